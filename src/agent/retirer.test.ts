import { beforeEach, describe, expect, test } from "bun:test";
import { lstatSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { FakeHost } from "../../test/fakes/fake-host.ts";
import { Nix } from "../nix/nix.ts";
import { Systemctl } from "../systemd/systemctl.ts";
import { Activator } from "./activator.ts";
import { AliasService, type RetentionPolicy } from "./aliases/alias-service.ts";
import { LocalAliasBackend } from "./aliases/local-backend.ts";
import { parseConfig } from "./config.ts";
import { localReport } from "./local-report.ts";
import { parseManifest } from "./manifest.ts";
import { type MemberView, RetirementPlanner } from "./retirement/planner.ts";
import { Retirer } from "./retirer.ts";
import type { Deployment } from "./state/deployment.ts";
import { StateStore } from "./state/store.ts";

const FE1 = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const BE1 = "1c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const FE2 = "2c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const BE2 = "3c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const REFS: Record<string, string[]> = { [FE1]: [BE1], [FE2]: [BE2], [BE1]: [], [BE2]: [] };
const pathOf = (hash: string) => `/nix/store/${hash}-svc`;

let host: FakeHost;
let store: StateStore;
let gcRoots: string;
let activator: Activator;
let aliases: AliasService;
let changes: Deployment[];
let now: number;

/** other members as gossip shows them (besides this one, "a") */
let others: MemberView[];

const retirer = (policy: RetentionPolicy = { kind: "retire" }, quietMs = 1000) =>
  new Retirer({
    store,
    systemctl: new Systemctl(host.exec),
    nix: new Nix(gcRoots, host.exec),
    activator,
    planner: new RetirementPlanner({ quietMs }),
    aliases,
    policy,
    members: () => [
      { name: "a", status: "alive", hashes: localReport(store, { inFlight: () => 0, holds: () => 0 }) },
      ...others,
    ],
    log: () => {},
    onChange: (d) => changes.push(d),
  });

const activate = async (hash: string) => {
  host.valid.add(pathOf(hash));
  await activator.activate({ path: pathOf(hash), wait: true });
};
/** the root is a dangling symlink here (the fake host has no store) */
const hasGcRoot = (hash: string) => lstatSync(`${gcRoots}/${hash}`, { throwIfNoEntry: false }) !== undefined;
const later = (ms: number) => {
  now += ms;
  return now;
};
const stateOf = (hash: string) => store.get(hash)?.state;
const eventKinds = (hash: string) => store.events(hash).map((e) => e.kind);

beforeEach(async () => {
  host = new FakeHost();
  now = 1_000;
  store = new StateStore(":memory:", () => now);
  gcRoots = mkdtempSync(`${tmpdir()}/hashd-gcroots-`);
  changes = [];
  others = [];
  activator = new Activator({
    config: parseConfig({}),
    socketDir: "/run/hashd/sockets",
    store,
    systemctl: new Systemctl(host.exec),
    nix: new Nix(gcRoots, host.exec),
    log: () => {},
    serviceRefs: async (_nix, path) => REFS[path.slice(11, 43)] ?? [],
    readManifest: async () =>
      parseManifest({ schema: 1, name: "svc", exec: ["/bin/true"], readiness: { type: "notify" } }),
  });
  aliases = new AliasService(new LocalAliasBackend("a"), store.db, () => now);
  for (const h of [FE1, BE1, FE2, BE2]) await activate(h);
});

describe("retirer (the planner's actions carried out on systemd, Nix and the database)", () => {
  test("wanted, drain, retire top-down: units stopped, GC root dropped, one event per change", async () => {
    const r = retirer();
    aliases.set({ prod: FE1 });
    await r.tick(now);
    expect(store.get(FE1)?.everWanted).toBe(true);
    expect(store.get(BE1)?.everWanted).toBe(true);
    expect(eventKinds(BE1)).toEqual(["wanted", "ready", "activating"]);

    aliases.set({ prod: FE2 });
    await r.tick(later(1000));
    expect([stateOf(FE1), stateOf(BE1), stateOf(FE2), stateOf(BE2)]).toEqual([
      "draining",
      "draining",
      "ready",
      "ready",
    ]);
    expect(store.events(BE1).map((e) => [e.kind, e.message.slice(0, 16)])[1]).toEqual([
      "kept",
      "draining, kept: ",
    ]);
    expect(store.events(BE1)[1]?.message).toContain(`dependent ${FE1} is ready on a`);

    await r.tick(later(1000));
    expect(stateOf(FE1)).toBe("retired");
    expect(stateOf(BE1)).toBe("draining");
    expect(host.units.has(`hashd-${FE1}.socket`)).toBe(false);
    expect(host.units.has(`hashd-${FE1}.service`)).toBe(false);
    expect(hasGcRoot(FE1)).toBe(false);
    expect(hasGcRoot(BE1)).toBe(true);

    await r.tick(later(500));
    expect(stateOf(BE1)).toBe("draining");
    await r.tick(later(1000));
    expect(stateOf(BE1)).toBe("retired");
    expect(changes.filter((d) => d.state === "retired").map((d) => d.hash)).toEqual([FE1, BE1]);
  });

  test("undrain goes back to ready if the service runs, else to idle", async () => {
    const r = retirer();
    aliases.set({ prod: FE1 });
    await r.tick(now);
    aliases.set({ prod: FE2 });
    await r.tick(later(100));
    host.units.set(`hashd-${BE1}.service`, "inactive");
    aliases.set({ prod: FE1 });
    await r.tick(later(100));
    expect(stateOf(FE1)).toBe("ready");
    expect(stateOf(BE1)).toBe("idle");
    expect(store.events(FE1)[0]?.message).toBe("wanted again: alias prod");
  });

  test("retention policy keep: unwanted hashes are scaled to zero, never retired", async () => {
    const r = retirer({ kind: "keep" }, 0);
    aliases.set({ prod: FE1 });
    await r.tick(now);
    aliases.set({ prod: FE2 });
    await r.tick(later(1000));
    await r.tick(later(1000));
    expect([stateOf(FE1), stateOf(BE1)]).toEqual(["idle", "idle"]);
    expect(host.units.has(`hashd-${FE1}.service`)).toBe(false);
    expect(host.units.has(`hashd-${FE1}.socket`)).toBe(true);
  });

  test("a hash never aliased or pinned is never drained", async () => {
    const r = retirer({ kind: "retire" }, 0);
    await r.tick(now);
    await r.tick(later(10_000));
    expect([FE1, BE1, FE2, BE2].map(stateOf)).toEqual(["ready", "ready", "ready", "ready"]);
  });

  test("the members counted for the majority outlive a restart (a fresh gossip view sees only itself)", async () => {
    others = [
      { name: "b", status: "alive", hashes: [] },
      { name: "c", status: "alive", hashes: [] },
    ];
    const before = retirer();
    aliases.set({ prod: FE1 });
    await before.tick(now);
    aliases.set({ prod: FE2 });
    await before.tick(later(1000));
    expect(stateOf(FE1)).toBe("draining");
    expect(store.knownMembers()).toEqual(["a", "b", "c"]);

    // the agent restarts cut off from b and c: its new gossip node knows only itself
    others = [];
    const after = retirer();
    await after.tick(later(1000));
    await after.tick(later(60_000));
    expect(stateOf(FE1)).toBe("draining");
    expect(after.verdicts.get(FE1)?.reason).toContain("sees 1 of 3 members, not a majority");

    others = [{ name: "b", status: "alive", hashes: [] }];
    await after.tick(later(1000));
    await after.tick(later(1000));
    expect(stateOf(FE1)).toBe("retired");
  });
});
