import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { FakeHost } from "../../../test/fakes/fake-host.ts";
import { HashdError } from "../../lib/errors.ts";
import { type Config, parseConfig } from "../../model/config.ts";
import { type Manifest, parseManifest } from "../../model/manifest.ts";
import { Nix } from "../../nix/nix.ts";
import { Systemctl } from "../../systemd/systemctl.ts";
import { StateStore } from "../state/store.ts";
import { Activator } from "./activator.ts";
import type { RestartDrain } from "./restart.ts";
import { syncServiceStates } from "./unit-watch.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const PATH = `/nix/store/${H}-api`;
const SERVICE = `hashd-${H}.service`;

const dir = fs.mkdtempSync(path.join(tmpdir(), "hashd-restart-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const secret = path.join(dir, "db-url");

let host: FakeHost;
let store: StateStore;
let gcroots: string;
let manifest: Manifest;

function activatorWith(config: Config): Activator {
  return new Activator({
    config,
    socketDir: "/run/hashd/sockets",
    store,
    systemctl: new Systemctl(host.exec),
    nix: new Nix(gcroots, host.exec),
    log: () => {},
    serviceRefs: async () => [],
    readManifest: async () => manifest,
  });
}

// Not through parseConfig: it refuses credentials under /tmp (the NixOS unit's PrivateTmp=), where
// the test's files are.
const withSecret = (): Config => ({ ...parseConfig({}), credentials: { api: { "db-url": secret } } });

/** A drain that records what the restart did to the ingress, in order. */
function fakeDrain(inFlight = 0) {
  const steps: string[] = [];
  const closed = new Set<string>();
  const drain: RestartDrain & { inFlight: number } = {
    inFlight,
    gate: {
      close: (h) => {
        if (closed.has(h)) throw new Error("already closed");
        closed.add(h);
        steps.push("gate closed");
      },
      open: (h) => {
        if (closed.delete(h)) steps.push("gate open");
      },
      isClosed: (h) => closed.has(h),
    },
    inflight: { count: () => drain.inFlight },
    dropIdleUpstreams: () => steps.push(`pool dropped with ${drain.inFlight} in flight`),
  };
  return { drain, steps, closed };
}

/** systemctl calls that act on units (not show, journal or the fake's nix). */
const acts = () =>
  host.calls
    .filter((c) => c[0] === "systemctl" && c[1] !== "show")
    .map((c) => `${c[1]} ${c.slice(2).join(" ")}`);

beforeEach(() => {
  host = new FakeHost();
  host.valid.add(PATH);
  store = new StateStore(":memory:");
  gcroots = fs.mkdtempSync(path.join(dir, "gcroots-"));
  fs.writeFileSync(secret, "postgres://u:s3cret@db/app", { mode: 0o400 });
  manifest = parseManifest({
    schema: 1,
    name: "api",
    exec: ["/bin/true"],
    readiness: { type: "notify" },
    credentials: ["db-url"],
    drainTimeoutSec: 1,
  });
});

describe("activation of a hash whose credentials this host lacks", () => {
  test("a credential the host maps to nothing: refused (exit 3) before any unit, GC root or row", async () => {
    const e = await activatorWith(parseConfig({}))
      .activate({ path: PATH, wait: true })
      .catch((x) => x);
    expect(e).toBeInstanceOf(HashdError);
    expect(e.code).toBe("missing_credential");
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain("credentials.api.db-url");
    expect(store.list()).toEqual([]);
    expect(host.calls.filter((c) => c[0] !== "nix-store")).toEqual([]);
    expect(fs.readdirSync(gcroots)).toEqual([]);
  });

  test("a missing file: refused naming service, credential and path; nothing created", async () => {
    fs.rmSync(secret);
    const e = await activatorWith(withSecret())
      .activate({ path: PATH, wait: true })
      .catch((x) => x);
    expect(e.code).toBe("missing_credential");
    expect(e.message).toContain(`service api, credential db-url: ${secret} does not exist`);
    expect(store.list()).toEqual([]);
    expect(host.countOf("systemd-run")).toBe(0);
    expect(fs.readdirSync(gcroots)).toEqual([]);
  });

  test("--force of a live hash whose file has gone: refused, and its running units are not touched", async () => {
    const activator = activatorWith(withSecret());
    const live = await activator.activate({ path: PATH, wait: true });
    fs.rmSync(secret);
    const before = host.calls.length;
    const e = await activator.activate({ path: PATH, wait: true, force: true }).catch((x) => x);
    expect(e.code).toBe("missing_credential");
    expect(host.calls.slice(before).filter((c) => c[0] === "systemctl" || c[0] === "systemd-run")).toEqual(
      [],
    );
    expect(store.get(H)).toMatchObject({ state: "ready", generation: live.deployment.generation });
    expect(host.units.get(SERVICE)).toBe("active");
  });

  test("present: the service unit loads it, and the value is nowhere in what the agent wrote", async () => {
    const r = await activatorWith(withSecret()).activate({ path: PATH, wait: true });
    expect(r.deployment.state).toBe("ready");
    const run = host.calls.find((c) => c[0] === "systemd-run") ?? [];
    expect(run).toContain(`--property=LoadCredential=db-url:${secret}`);
    const everything = JSON.stringify([host.calls, store.list(), store.events(undefined, 1000)]);
    expect(everything).not.toContain("s3cret");
  });
});

describe("a lost socket whose credential file is gone", () => {
  test("the unit watch fails that hash with the reason, and does not throw out of its round", async () => {
    const activator = activatorWith(withSecret());
    await activator.activate({ path: PATH, wait: true });
    host.units.delete(`hashd-${H}.socket`); // removed by hand, say
    fs.rmSync(secret);
    const changes: string[] = [];
    await syncServiceStates(store, new Systemctl(host.exec), activator, (d) => changes.push(d.state));
    expect(store.get(H)?.state).toBe("failed");
    expect(store.get(H)?.error).toContain(`${secret} does not exist`);
    expect(changes).toEqual(["failed"]);
    expect(host.countOf("systemd-run")).toBe(1); // the activation's only
  });
});

describe("restart (rotation)", () => {
  test("closes the gate, waits for the requests in flight, drops the pool, stops and starts, opens the gate", async () => {
    const activator = activatorWith(withSecret());
    await activator.activate({ path: PATH, wait: true });
    host.calls.length = 0;
    const { drain, steps } = fakeDrain(2);
    setTimeout(() => {
      steps.push("last request done");
      drain.inFlight = 0;
    }, 100);
    const r = await activator.restart(H, drain);
    expect(r).toMatchObject({ restarted: true, drained: 2, cut: 0 });
    expect(r.heldMs).toBeGreaterThanOrEqual(90);
    expect(steps).toEqual(["gate closed", "last request done", "pool dropped with 0 in flight", "gate open"]);
    expect(acts()).toEqual([`stop ${SERVICE}`, `start ${SERVICE}`]);
    // the socket stays
    expect(host.units.get(`hashd-${H}.socket`)).toBe("active");
    expect(store.events(H, 1)[0]).toMatchObject({ kind: "restart" });
    expect(store.events(H, 1)[0]?.message).toContain("2 request(s) in flight drained first");
  });

  test("requests that never finish are waited for drainTimeoutSec, then the restart goes on", async () => {
    const activator = activatorWith(withSecret());
    await activator.activate({ path: PATH, wait: true });
    const { drain, steps } = fakeDrain(1);
    const started = Date.now();
    const r = await activator.restart(H, drain);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(r).toMatchObject({ restarted: true, drained: 1, cut: 1 });
    expect(steps.at(-1)).toBe("gate open");
  });

  test("an idle stop holding the gate is waited for; a program not running is not started", async () => {
    const activator = activatorWith(withSecret());
    await activator.activate({ path: PATH, wait: true });
    const { drain, closed, steps } = fakeDrain(0);
    closed.add(H); // the idle scaler's stop
    setTimeout(() => {
      host.units.delete(SERVICE); // its stop ended: the service is gone, the socket listens
      closed.delete(H);
    }, 50);
    host.calls.length = 0;
    const r = await activator.restart(H, drain);
    expect(r.restarted).toBe(false);
    expect(steps).toEqual([]);
    expect(acts()).toEqual([]);
  });

  test("a credential file gone: refused before the gate closes or anything stops", async () => {
    const activator = activatorWith(withSecret());
    await activator.activate({ path: PATH, wait: true });
    fs.rmSync(secret);
    host.calls.length = 0;
    const { drain, steps } = fakeDrain(0);
    const e = await activator.restart(H, drain).catch((x) => x);
    expect(e.code).toBe("missing_credential");
    expect(steps).toEqual([]);
    expect(acts()).toEqual([]);
    expect(host.units.get(SERVICE)).toBe("active");
  });

  test("a program that fails to start again fails the hash (units stopped), and the gate opens", async () => {
    const activator = activatorWith(withSecret());
    await activator.activate({ path: PATH, wait: true });
    host.failing.add(SERVICE);
    const { drain, closed } = fakeDrain(0);
    const e = await activator.restart(H, drain).catch((x) => x);
    expect(e.code).toBe("systemd_failed");
    expect(e.message).toContain("boom: exit 3");
    expect(closed.size).toBe(0);
    expect(store.get(H)?.state).toBe("failed");
    expect(host.units.has(`hashd-${H}.socket`)).toBe(false);
  });

  test("unknown, failed and retired hashes, and a malformed one, are refused", async () => {
    const activator = activatorWith(withSecret());
    const { drain } = fakeDrain(0);
    expect((await activator.restart(H, drain).catch((x) => x)).code).toBe("not_found");
    expect((await activator.restart("nope", drain).catch((x) => x)).code).toBe("bad_request");
    await activator.activate({ path: PATH, wait: true });
    await activator.deactivate(H);
    const e = await activator.restart(H, drain).catch((x) => x);
    expect(e.code).toBe("conflict");
    expect(e.message).toContain(`hashd activate ${PATH}`);
  });
});
