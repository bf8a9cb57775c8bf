import { describe, expect, test } from "bun:test";
import { FakeHost } from "../../../test/fakes/fake-host.ts";
import type { Deployment } from "../../model/deployment.ts";
import { parseManifest } from "../../model/manifest.ts";
import { Systemctl } from "../../systemd/systemctl.ts";
import { hashUnits } from "../../systemd/unit-names.ts";
import { StateStore } from "../state/store.ts";
import { type IdleRegistry, ScaleToZeroPolicy } from "./scale-to-zero.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";

function setup(busy = false) {
  const host = new FakeHost();
  const store = new StateStore(":memory:");
  const manifest = parseManifest({
    schema: 1,
    name: "backend",
    exec: ["/bin/true"],
    readiness: { type: "notify" },
    idleStopSec: 30,
  });
  const d = store.beginActivation(`/nix/store/${H}-backend`, H, manifest, "activate");
  const ready = store.transition(H, d.generation, "ready", "ready") as Deployment;
  host.units.set(`hashd-${H}.socket`, "active");
  host.units.set(`hashd-${H}.service`, "active");
  const changed: Deployment[] = [];
  const policy = new ScaleToZeroPolicy({
    store,
    systemctl: new Systemctl(host.exec),
    activator: { isBusy: () => busy, units: (h) => hashUnits(h, "/run/hashd/sockets") },
    onChange: (x) => changed.push(x),
  });
  return { host, store, ready, changed, policy };
}

describe("ScaleToZeroPolicy", () => {
  test("a live hash is tracked with its idleStopSec; one that is not live any more is dropped", () => {
    const { ready, policy } = setup();
    const calls: string[] = [];
    const registry: IdleRegistry = {
      register: (h, s) => calls.push(`register ${h} ${s}`),
      unregister: (h) => calls.push(`unregister ${h}`),
    };
    policy.follow(registry, ready);
    policy.follow(registry, { ...ready, state: "idle" });
    policy.follow(registry, { ...ready, state: "failed" });
    policy.follow(registry, { ...ready, state: "retired" });
    expect(calls).toEqual([`register ${H} 30`, `register ${H} 30`, `unregister ${H}`, `unregister ${H}`]);
  });

  test("the stop: the service goes, its socket stays, and the hash is idle", async () => {
    const { host, store, changed, policy } = setup();
    await policy.stopService(H);
    expect(host.calls.filter((c) => c[0] === "systemctl" && c[1] === "stop").map((c) => c.at(-1))).toEqual([
      `hashd-${H}.service`,
    ]);
    expect(host.units.get(`hashd-${H}.socket`)).toBe("active");
    expect(store.get(H)?.state).toBe("idle");
    expect(changed.map((d) => d.state)).toEqual(["idle"]);
    expect(store.events(H)[0]?.message).toBe("no request or hold for 30 s");
  });

  test("a hash being activated or stopped, or unknown, is left alone", async () => {
    const { host, store, changed, policy } = setup(true);
    await policy.stopService(H);
    await policy.stopService("00000000000000000000000000000000");
    expect(host.countOf("systemctl", "stop")).toBe(0);
    expect(store.get(H)?.state).toBe("ready");
    expect(changed).toEqual([]);
  });
});
