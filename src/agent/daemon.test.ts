import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeHost } from "../../test/fakes/fake-host.ts";
import { HashdError } from "../lib/errors.ts";
import { type Config, parseConfig, pathsOf } from "../model/config.ts";
import { parseManifest } from "../model/manifest.ts";
import { type RunningAgent, startAgent } from "./daemon.ts";
import { StateStore } from "./state/store.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const PATH = `/nix/store/${H}-backend`;

const dirs: string[] = [];
const agents: RunningAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A config whose every path is in a fresh temporary directory, on free ports, without gossip. */
function tempConfig(): Config {
  const root = mkdtempSync(join(tmpdir(), "hashd-daemon-"));
  dirs.push(root);
  return parseConfig({
    stateDir: join(root, "state"),
    runtimeDir: join(root, "run"),
    gcRootDir: join(root, "gcroots"),
    ingress: { address: "127.0.0.1", port: 0 },
    status: { address: "127.0.0.1", port: 0 },
  });
}

/** Everything in the database a second agent could have written to. */
function contents(database: string) {
  const store = new StateStore(database);
  try {
    return {
      deployments: store.list(),
      events: store.events(undefined, 10_000),
      holds: store.holds(),
      members: store.knownMembers(),
    };
  } finally {
    store.close();
  }
}

describe("startAgent", () => {
  test("a second agent on the same directories refuses before it touches the first one's state", async () => {
    const config = tempConfig();
    mkdirSync(config.stateDir, { recursive: true });
    const seed = new StateStore(pathsOf(config).database);
    const manifest = parseManifest({
      schema: 1,
      name: "backend",
      exec: ["/bin/true"],
      readiness: { type: "notify" },
    });
    const d = seed.beginActivation(PATH, H, manifest, "activate");
    seed.transition(H, d.generation, "ready", "ready");
    seed.close();

    // The first agent adopts the hash's units, which its host runs.
    const first = new FakeHost();
    first.units.set(`hashd-${H}.socket`, "active");
    first.units.set(`hashd-${H}.service`, "active");
    agents.push(await startAgent(config, "test", () => {}, { exec: first.exec }));
    const before = contents(pathsOf(config).database);
    expect(before.events.map((e) => e.kind)).toContain("adopted");

    // A second one started by hand beside it (here: its host shows no units, as after a reboot, so
    // a reconcile would re-create them and write events) must stop at the single-instance check.
    const second = new FakeHost();
    const logged: string[] = [];
    const refused = await startAgent(config, "test", (m) => logged.push(m), { exec: second.exec }).then(
      (a) => {
        agents.push(a);
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(HashdError);
    expect((refused as HashdError).code).toBe("conflict");
    expect((refused as HashdError).message).toBe(
      `another agent already serves ${pathsOf(config).controlSocket}`,
    );
    expect(second.calls).toEqual([]);
    expect(logged).toEqual([]);
    expect(contents(pathsOf(config).database)).toEqual(before);

    // The first agent still serves its control socket.
    const answer = await fetch("http://agent/v1/deployments", { unix: pathsOf(config).controlSocket });
    expect(answer.status).toBe(200);
  });
});
