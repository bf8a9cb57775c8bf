import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeHost } from "../../test/fakes/fake-host.ts";
import { HashdError } from "../lib/errors.ts";
import { type Config, parseConfig, pathsOf } from "../model/config.ts";
import { parseManifest } from "../model/manifest.ts";
import { type RunningAgent, startAgent } from "./daemon.ts";
import { Keyring } from "./gossip/wire/crypto.ts";
import { StateStore } from "./state/store.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const PATH = `/nix/store/${H}-backend`;

const dirs: string[] = [];
const agents: RunningAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * A config whose every path is in a fresh temporary directory, on free ports, without gossip;
 * `extra(root)` adds to it or replaces sections.
 */
function tempConfig(extra: (root: string) => Record<string, unknown> = () => ({})): Config {
  const root = mkdtempSync(join(tmpdir(), "hashd-daemon-"));
  dirs.push(root);
  return parseConfig({
    stateDir: join(root, "state"),
    runtimeDir: join(root, "run"),
    gcRootDir: join(root, "gcroots"),
    ingress: { address: "127.0.0.1", port: 0 },
    status: { address: "127.0.0.1", port: 0 },
    ...extra(root),
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Binds UDP and TCP on the port and lets go: throws EADDRINUSE if anything still holds it. */
async function bindBoth(port: number): Promise<void> {
  const udp = await Bun.udpSocket({ hostname: "127.0.0.1", port });
  udp.close();
  const tcp = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
  tcp.stop(true);
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

  test("a phase that fails half way stops what the earlier ones started, and its error is thrown", async () => {
    // The ingress's port is taken: start-serving fails after the store is open, the gossip node
    // runs, and the service API and the status page serve.
    const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const statusPort = freePort();
    const config = tempConfig((root) => {
      writeFileSync(join(root, "gossip.key"), `${Keyring.generateKey()}\n`);
      return {
        ingress: { address: "127.0.0.1", port: taken.port },
        status: { address: "127.0.0.1", port: statusPort },
        gossip: { address: "127.0.0.1", port: 0, keyFile: join(root, "gossip.key"), name: "a" },
      };
    });
    const paths = pathsOf(config);
    const logged: string[] = [];
    const failed = await startAgent(config, "test", (m) => logged.push(m), {
      exec: new FakeHost().exec,
    }).then(
      (a) => {
        agents.push(a);
        return undefined;
      },
      (e: unknown) => e,
    );
    taken.stop(true);
    expect((failed as { code?: string }).code).toBe("EADDRINUSE");

    // the store was opened and is closed (SQLite removes the WAL file when its last connection closes)
    expect(existsSync(paths.database)).toBe(true);
    expect(existsSync(`${paths.database}-wal`)).toBe(false);
    // the gossip node ran and has left: its UDP and TCP port is free again
    const gossipPort = Number(
      logged
        .find((m) => m.startsWith("gossip: a at "))
        ?.split(":")
        .at(-1),
    );
    expect(gossipPort).toBeGreaterThan(0);
    await bindBoth(gossipPort);
    // the service API's socket is removed, the status page's port is free, the control API never served
    expect(existsSync(paths.serviceSocket)).toBe(false);
    await bindBoth(statusPort);
    expect(existsSync(paths.controlSocket)).toBe(false);
    expect(logged.filter((m) => m.startsWith("stopping"))).toEqual([]);

    // and the same directories start an agent again
    const again = await startAgent({ ...config, ingress: { ...config.ingress, port: 0 } }, "test", () => {}, {
      exec: new FakeHost().exec,
    });
    agents.push(again);
    const answer = await fetch("http://agent/v1/deployments", { unix: paths.controlSocket });
    expect(answer.status).toBe(200);
  });
});
