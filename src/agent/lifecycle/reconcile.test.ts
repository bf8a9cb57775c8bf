import { beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { FakeHost } from "../../../test/fakes/fake-host.ts";
import { parseConfig } from "../../model/config.ts";
import { parseManifest } from "../../model/manifest.ts";
import { Nix } from "../../nix/nix.ts";
import { Systemctl } from "../../systemd/systemctl.ts";
import { StateStore } from "../state/store.ts";
import { Activator } from "./activator.ts";
import { reconcile } from "./reconcile.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const PATH = `/nix/store/${H}-unix`;
const manifest = parseManifest({
  schema: 1,
  name: "unix",
  exec: ["/bin/true"],
  socket: { type: "unix" },
  readiness: { type: "notify" },
});

let host: FakeHost;
let store: StateStore;
let activator: Activator;
let helperCalls: number;

beforeEach(() => {
  host = new FakeHost();
  store = new StateStore(":memory:");
  helperCalls = 0;
  activator = new Activator({
    config: parseConfig({}),
    socketDir: "/run/hashd/sockets",
    store,
    systemctl: new Systemctl(host.exec),
    nix: new Nix(mkdtempSync(`${tmpdir()}/hashd-gcroots-`), host.exec),
    log: () => {},
    readManifest: async () => manifest,
    proxyHelpers: () => {
      helperCalls++;
      return { socketProxyd: "/run/hashd/bin/systemd-socket-proxyd", waitUpstream: ["/x", "wait-upstream"] };
    },
  });
});

function live(state: "ready" | "idle") {
  const d = store.beginActivation(PATH, H, manifest, "activate");
  store.transition(H, d.generation, state, "test", null);
}

const run = () => reconcile(store, new Systemctl(host.exec), activator, () => {});

describe("reconcile of proxied hashes (against a fake host)", () => {
  test("all units present: adopted, nothing created, helper links refreshed", async () => {
    live("ready");
    host.units.set(`hashd-${H}.socket`, "active");
    host.units.set(`hashd-${H}.service`, "active");
    host.units.set(`hashd-${H}-app.service`, "active");
    const report = await run();
    expect(report.adopted).toEqual([H]);
    expect(host.countOf("systemd-run")).toBe(0);
    expect(host.countOf("systemctl", "stop")).toBe(0);
    expect(helperCalls).toBe(1);
  });

  test("after a reboot (no units) an idle hash gets all its units back, nothing started", async () => {
    live("idle");
    const report = await run();
    expect(report.recreated).toEqual([H]);
    expect(host.countOf("systemd-run")).toBe(2);
    expect(host.countOf("systemctl", "stop")).toBe(1); // the app's timer
    expect(host.countOf("systemctl", "start")).toBe(0);
    expect(store.get(H)?.state).toBe("idle");
  });

  test("the socket without the program's unit is not adopted: everything left is cleared and re-made", async () => {
    live("idle");
    host.units.set(`hashd-${H}.socket`, "active");
    const report = await run();
    expect(report.recreated).toEqual([H]);
    const stops = host.calls.filter((c) => c[1] === "stop");
    expect(stops[0]?.slice(2)).toEqual([`hashd-${H}.socket`]);
    expect(host.units.get(`hashd-${H}-app.service`)).toBe("inactive");
    expect(host.units.get(`hashd-${H}.socket`)).toBe("active");
  });

  test("a timer left by an agent killed mid-creation is stopped when the rest is adopted", async () => {
    live("idle");
    for (const u of [".socket", "-app.service", "-app.timer"]) host.units.set(`hashd-${H}${u}`, "active");
    host.units.set(`hashd-${H}.service`, "inactive");
    const report = await run();
    expect(report.adopted).toEqual([H]);
    expect(host.units.has(`hashd-${H}-app.timer`)).toBe(false);
  });
});
