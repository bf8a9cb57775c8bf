import { beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { FakeHost } from "../../../test/fakes/fake-host.ts";
import { HashdError } from "../../lib/errors.ts";
import { parseConfig } from "../../model/config.ts";
import { type Manifest, parseManifest } from "../../model/manifest.ts";
import { Nix } from "../../nix/nix.ts";
import { Systemctl } from "../../systemd/systemctl.ts";
import { StateStore } from "../state/store.ts";
import { Activator } from "./activator.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const PATH = `/nix/store/${H}-backend`;

let host: FakeHost;
let store: StateStore;
let activator: Activator;
let manifests: Map<string, Manifest | Error>;

beforeEach(() => {
  host = new FakeHost();
  store = new StateStore(":memory:");
  manifests = new Map([
    [PATH, parseManifest({ schema: 1, name: "backend", exec: ["/bin/true"], readiness: { type: "notify" } })],
  ]);
  activator = new Activator({
    config: parseConfig({}),
    socketDir: "/run/hashd/sockets",
    store,
    systemctl: new Systemctl(host.exec),
    nix: new Nix(mkdtempSync(`${tmpdir()}/hashd-gcroots-`), host.exec),
    log: () => {},
    serviceRefs: async () => [],
    readManifest: async (p) => {
      const m = manifests.get(p);
      if (!m) throw new HashdError("bad_request", `${p} is not a service closure`);
      if (m instanceof Error) throw m;
      return m;
    },
  });
});

describe("activation logic (against a fake host)", () => {
  test("activates and becomes ready", async () => {
    host.valid.add(PATH);
    const r = await activator.activate({ path: PATH, wait: true });
    expect(r.existing).toBe(false);
    expect(r.deployment.state).toBe("ready");
    expect(host.units.get(`hashd-${H}.service`)).toBe("active");
    expect(store.events(H).map((e) => e.kind)).toEqual(["ready", "activating"]);
  });

  test("dedup: a live hash is returned as it is and no unit is touched", async () => {
    host.valid.add(PATH);
    const first = await activator.activate({ path: PATH, wait: true });
    const callsBefore = host.calls.length;
    const again = await activator.activate({ path: PATH, wait: true });
    expect(again.existing).toBe(true);
    expect(again.deployment).toEqual(first.deployment);
    expect(host.calls.length).toBe(callsBefore);
  });

  test("concurrent activations of one hash share one pipeline", async () => {
    host.valid.add(PATH);
    const [a, b] = await Promise.all([
      activator.activate({ path: PATH, wait: true }),
      activator.activate({ path: PATH, wait: true }),
    ]);
    expect(a.deployment.generation).toBe(b.deployment.generation);
    expect(host.countOf("systemd-run")).toBe(1);
  });

  test("a failed start is reported with the journal, and activating again retries", async () => {
    host.valid.add(PATH);
    host.failing.add(`hashd-${H}.service`);
    const err = await activator.activate({ path: PATH, wait: true }).catch((e) => e);
    expect(err).toBeInstanceOf(HashdError);
    expect(err.message).toContain("failed");
    expect(err.message).toContain("boom: exit 3");
    expect(store.get(H)?.state).toBe("failed");
    host.failing.clear();
    const retry = await activator.activate({ path: PATH, wait: true });
    expect(retry.existing).toBe(false);
    expect(retry.deployment.state).toBe("ready");
    expect(retry.deployment.generation).toBe(2);
  });

  test("--force re-creates the units of a live hash", async () => {
    host.valid.add(PATH);
    await activator.activate({ path: PATH, wait: true });
    const forced = await activator.activate({ path: PATH, wait: true, force: true });
    expect(forced.deployment.generation).toBe(2);
    expect(host.countOf("systemd-run")).toBe(2);
  });

  test("a missing path without substituter, or a broken manifest, changes nothing", async () => {
    await expect(activator.activate({ path: PATH })).rejects.toThrow(/not in the local store/);
    host.valid.add(PATH);
    manifests.set(PATH, new HashdError("bad_request", "invalid manifest: exec: required"));
    await expect(activator.activate({ path: PATH })).rejects.toThrow(/invalid manifest/);
    await expect(activator.activate({ path: "/nix/store/short-x" })).rejects.toThrow(/not a store path/);
    expect(store.list()).toEqual([]);
    expect(host.countOf("systemd-run")).toBe(0);
  });

  test("units left behind by a lost database are replaced, not an error", async () => {
    host.valid.add(PATH);
    host.units.set(`hashd-${H}.socket`, "active");
    const r = await activator.activate({ path: PATH, wait: true });
    expect(r.deployment.state).toBe("ready");
    expect(host.countOf("systemd-run")).toBe(2);
    expect(host.countOf("systemctl", "stop")).toBe(1);
  });

  test("only a taken unit name is replaced: another refusal that says 'already exists' fails the hash", async () => {
    host.valid.add(PATH);
    host.runRefusal =
      "Failed to start transient service unit: /run/hashd/hold-token already exists as a directory";
    await expect(activator.activate({ path: PATH, wait: true })).rejects.toThrow(/systemd-run refused/);
    expect(host.countOf("systemd-run")).toBe(1);
    expect(host.countOf("systemctl", "stop")).toBe(0);
    expect(store.get(H)?.state).toBe("failed");
  });

  test("lazy activation leaves the service to the first connection", async () => {
    host.valid.add(PATH);
    const r = await activator.activate({ path: PATH, lazy: true });
    expect(r.deployment.state).toBe("idle");
    expect(host.countOf("systemctl", "start")).toBe(0);
  });

  test("deactivate stops the pair and records retired", async () => {
    host.valid.add(PATH);
    await activator.activate({ path: PATH, wait: true });
    const d = await activator.deactivate(H);
    expect(d.state).toBe("retired");
    expect(host.units.size).toBe(0);
    await expect(activator.deactivate("nope")).rejects.toThrow(/not a store hash/);
  });
});

describe("proxied modes (against a fake host)", () => {
  const UNIX_PATH = `/nix/store/${H}-unix`;
  const helpers = {
    socketProxyd: "/run/hashd/bin/systemd-socket-proxyd",
    waitUpstream: ["/run/hashd/bin/hashd", "wait-upstream"],
  };
  let proxydMissing = false;

  function proxiedActivator(): Activator {
    return new Activator({
      config: parseConfig({}),
      socketDir: "/run/hashd/sockets",
      store,
      systemctl: new Systemctl(host.exec),
      nix: new Nix(mkdtempSync(`${tmpdir()}/hashd-gcroots-`), host.exec),
      log: () => {},
      serviceRefs: async () => [],
      readManifest: async () =>
        parseManifest({
          schema: 1,
          name: "unix",
          exec: ["/bin/true"],
          socket: { type: "unix" },
          readiness: { type: "notify" },
        }),
      proxyHelpers: () => {
        if (proxydMissing) throw new HashdError("systemd_failed", "systemd-socket-proxyd not found");
        return helpers;
      },
    });
  }

  beforeEach(() => {
    proxydMissing = false;
    host.valid.add(UNIX_PATH);
  });

  const runs = () => host.calls.filter((c) => c[0] === "systemd-run" || c[1] === "stop" || c[1] === "start");

  test("the program's unit first (behind its timer), then socket + proxy, then the timer goes", async () => {
    const r = await proxiedActivator().activate({ path: UNIX_PATH, wait: true });
    expect(r.deployment.state).toBe("ready");
    const steps = runs().map((c) => c.find((a) => a.startsWith("--unit=")) ?? c.slice(0, 3).join(" "));
    expect(steps).toEqual([
      `--unit=hashd-${H}-app.service`,
      `--unit=hashd-${H}`,
      `systemctl stop hashd-${H}-app.timer`,
      `systemctl start hashd-${H}.service`,
    ]);
    expect(host.units.get(`hashd-${H}.socket`)).toBe("active");
    expect(host.units.get(`hashd-${H}.service`)).toBe("active");
    expect(host.units.has(`hashd-${H}-app.service`)).toBe(true);
    expect(host.units.has(`hashd-${H}-app.timer`)).toBe(false);
  });

  test("lazy: the units exist and nothing was started", async () => {
    const r = await proxiedActivator().activate({ path: UNIX_PATH, lazy: true });
    expect(r.deployment.state).toBe("idle");
    expect(host.countOf("systemctl", "start")).toBe(0);
    expect(host.units.get(`hashd-${H}-app.service`)).toBe("inactive");
  });

  test("a missing systemd-socket-proxyd fails the activation clearly and creates nothing", async () => {
    proxydMissing = true;
    await expect(proxiedActivator().activate({ path: UNIX_PATH, wait: true })).rejects.toThrow(
      /systemd-socket-proxyd not found/,
    );
    expect(store.get(H)?.state).toBe("failed");
    expect(host.countOf("systemd-run")).toBe(0);
  });

  test("a failed start reports the program's journal and stops every unit", async () => {
    host.failing.add(`hashd-${H}.service`);
    const err = await proxiedActivator()
      .activate({ path: UNIX_PATH, wait: true })
      .catch((e) => e);
    expect(err.message).toContain("boom: exit 3");
    expect(err.message).toContain(`last lines of hashd-${H}-app.service, hashd-${H}.service`);
    const journal = host.calls.find((c) => c[0] === "journalctl") ?? [];
    expect(journal.filter((a) => a.startsWith("hashd-"))).toEqual([
      `hashd-${H}-app.service`,
      `hashd-${H}.service`,
    ]);
    const stop = host.calls.filter((c) => c[1] === "stop").at(-1) ?? [];
    expect(stop.slice(2)).toEqual([
      `hashd-${H}.socket`,
      `hashd-${H}.service`,
      `hashd-${H}-app.service`,
      `hashd-${H}-app.timer`,
    ]);
  });

  test("a program unit left by a lost database is replaced", async () => {
    host.units.set(`hashd-${H}-app.service`, "active");
    const r = await proxiedActivator().activate({ path: UNIX_PATH, wait: true });
    expect(r.deployment.state).toBe("ready");
    expect(host.countOf("systemd-run")).toBe(3);
  });

  test("deactivate removes all the units", async () => {
    const activator = proxiedActivator();
    await activator.activate({ path: UNIX_PATH, wait: true });
    expect((await activator.deactivate(H)).state).toBe("retired");
    expect(host.units.size).toBe(0);
  });
});
