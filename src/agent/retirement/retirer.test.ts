import { beforeEach, describe, expect, test } from "bun:test";
import { lstatSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { FakeHost } from "../../../test/fakes/fake-host.ts";
import type { Exec } from "../../lib/exec.ts";
import { parseConfig } from "../../model/config.ts";
import type { Deployment } from "../../model/deployment.ts";
import { parseManifest } from "../../model/manifest.ts";
import { Nix } from "../../nix/nix.ts";
import { Systemctl } from "../../systemd/systemctl.ts";
import { AliasService, type RetentionPolicy } from "../aliases/alias-service.ts";
import { LocalAliasBackend } from "../aliases/local-backend.ts";
import { localReport } from "../cluster/local-report.ts";
import { Activator } from "../lifecycle/activator.ts";
import { StateStore } from "../state/store.ts";
import { type MemberView, RetirementPlanner } from "./planner.ts";
import { Retirer } from "./retirer.ts";

const FE1 = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const BE1 = "1c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const FE2 = "2c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const BE2 = "3c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
/** a new frontend built against the old backend BE1 (not activated in beforeEach) */
const FE3 = "4c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const REFS: Record<string, string[]> = { [FE1]: [BE1], [FE2]: [BE2], [BE1]: [], [BE2]: [], [FE3]: [BE1] };
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
/** stages of an activation held back until released: `refs:<hash>`, `manifest:<hash>` */
let gates: Map<string, Promise<void>>;

/** A planner that lets something happen right after it ran (an alias write racing the retirer). */
class RacingPlanner extends RetirementPlanner {
  after: (() => void) | undefined;
  override step(input: Parameters<RetirementPlanner["step"]>[0]) {
    const result = super.step(input);
    this.after?.();
    this.after = undefined;
    return result;
  }
}

const retirer = (
  policy: RetentionPolicy = { kind: "retire" },
  quietMs = 1000,
  planner = new RetirementPlanner({ quietMs }),
) =>
  new Retirer({
    store,
    systemctl: new Systemctl(exec),
    nix: new Nix(gcRoots, host.exec),
    activator,
    planner,
    aliases,
    policy,
    members: () => [
      {
        name: "a",
        status: "alive",
        hashes: localReport(store, { inFlight: () => 0, holds: () => 0 }, activator.activations()),
      },
      ...others,
    ],
    log: () => {},
    onChange: (d) => changes.push(d),
  });

/** The fake host, with `systemctl stop` held back while the gate "stop" is closed. */
const exec: Exec = async (argv) => {
  if (argv[0] === "systemctl" && argv[1] === "stop") await gates.get("stop");
  return host.exec(argv);
};

/** A gate to hold an activation stage back, and the function that opens it. */
const gate = (key: string): (() => void) => {
  let open = () => {};
  gates.set(key, new Promise<void>((resolve) => (open = resolve)));
  return () => open();
};

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
  gates = new Map();
  activator = new Activator({
    config: parseConfig({}),
    socketDir: "/run/hashd/sockets",
    store,
    systemctl: new Systemctl(exec),
    nix: new Nix(gcRoots, host.exec),
    log: () => {},
    serviceRefs: async (_nix, path) => {
      await gates.get(`refs:${path.slice(11, 43)}`);
      return REFS[path.slice(11, 43)] ?? [];
    },
    readManifest: async (path) => {
      await gates.get(`manifest:${path.slice(11, 43)}`);
      return parseManifest({ schema: 1, name: "svc", exec: ["/bin/true"], readiness: { type: "notify" } });
    },
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

  test("a kept event per change of verdict, none per tick of the quiet period", async () => {
    const r = retirer({ kind: "retire" }, 5000);
    await switchToFE2(r);
    for (let i = 0; i < 4; i++) await r.tick(later(1000));
    const kept = (hash: string) =>
      store
        .events(hash)
        .filter((e) => e.kind === "kept")
        .map((e) => e.message)
        .reverse();
    expect(stateOf(FE1)).toBe("draining");
    expect(kept(FE1)).toEqual(["draining, quiet for 0 ms of 5000"]);
    expect(kept(BE1)).toEqual([
      `draining, kept: dependent ${FE1} is ready on a`,
      `draining, kept: dependent ${FE1} is draining on a`,
    ]);

    await r.tick(later(1000));
    await r.tick(later(1000));
    expect(stateOf(FE1)).toBe("retired");
    expect(kept(FE1)).toEqual([
      "draining, quiet for 0 ms of 5000",
      "retired: unwanted, unreferenced and idle everywhere",
    ]);
    expect(kept(BE1).slice(2)).toEqual(["draining, quiet for 0 ms of 5000"]);
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

/** prod moves from FE1 to FE2: FE1 and BE1 drain (one tick, quiet 0 unless ticked again). */
async function switchToFE2(r: Retirer): Promise<void> {
  aliases.set({ prod: FE1 });
  await r.tick(now);
  aliases.set({ prod: FE2 });
  await r.tick(later(100));
}

describe("retirer: activations racing retirement (issue 5)", () => {
  test("activating a draining hash brings it back, kept until an alias wants it, then retired as usual", async () => {
    const r = retirer({ kind: "retire" }, 0);
    await switchToFE2(r);
    expect(stateOf(FE1)).toBe("retired"); // quiet 0: the frontend went in the same tick
    expect(stateOf(BE1)).toBe("draining"); // ... its backend waits for that to be reported

    const again = await activator.activate({ path: pathOf(BE1) });
    expect(again.existing).toBe(true);
    expect(again.deployment).toMatchObject({ state: "ready", everWanted: false, reactivated: true });
    expect(store.events(BE1)[0]?.message).toBe(
      "activated again while draining: back in service, kept until an alias or pin wants it",
    );
    for (let i = 0; i < 3; i++) await r.tick(later(1000));
    expect(stateOf(BE1)).toBe("ready");
    expect(r.verdicts.get(BE1)?.reason).toContain("activated again by hand");

    // the new dependent is deployed and aliased: BE1 is wanted again, then unwanted and retired
    await activate(FE3);
    aliases.set({ pr: FE3 });
    await r.tick(later(1000));
    expect(store.get(BE1)).toMatchObject({ everWanted: true, reactivated: false });
    aliases.remove("pr");
    for (let i = 0; i < 3; i++) await r.tick(later(1000));
    expect([stateOf(FE3), stateOf(BE1)]).toEqual(["retired", "retired"]);
  });

  test("an activation under way keeps what it references: everything until its refs are read, then them", async () => {
    const r = retirer({ kind: "retire" }, 0);
    await switchToFE2(r);
    expect(stateOf(BE1)).toBe("draining");
    host.valid.add(pathOf(FE3));
    const openRefs = gate(`refs:${FE3}`);
    const openManifest = gate(`manifest:${FE3}`);
    const activation = activator.activate({ path: pathOf(FE3) });

    // the closure is still being copied: any local hash could be one of its references
    await r.tick(later(1000));
    expect(stateOf(BE1)).toBe("draining");
    expect(r.verdicts.get(BE1)?.reason).toContain(
      `activation of ${FE3} here has not read its references yet`,
    );

    openRefs();
    await Bun.sleep(0);
    expect(localReport(store, { inFlight: () => 0, holds: () => 0 }, activator.activations())).toContainEqual(
      {
        hash: FE3,
        state: "fetching",
        inFlight: 0,
        holds: 0,
        refs: [BE1],
      },
    );
    await r.tick(later(1000));
    expect(stateOf(BE1)).toBe("draining");
    expect(r.verdicts.get(BE1)?.reason).toContain(`dependent ${FE3} is fetching on a`);

    openManifest();
    expect((await activation).deployment.state).toBe("activating");
    expect(activator.activations()).toEqual([]);
    await r.tick(later(1000));
    expect(stateOf(BE1)).toBe("draining");
    expect(r.verdicts.get(BE1)?.reason).toMatch(new RegExp(`dependent ${FE3} is (activating|ready) on a`));
  });

  test("a retirement reads the alias table again right before it stops: a rollback since the planner ran keeps the hash", async () => {
    const planner = new RacingPlanner({ quietMs: 0 });
    const r = retirer({ kind: "retire" }, 0, planner);
    await switchToFE2(r); // FE1 retired at once (quiet 0), BE1 draining: it goes next tick ...
    planner.after = () => aliases.set({ prod: FE1 }); // ... but a rollback lands just after the planner
    await r.tick(later(100));
    expect(stateOf(BE1)).not.toBe("retired");
    expect(
      store.events(BE1).some((e) => e.message.startsWith("not retired: wanted again since the planner ran")),
    ).toBe(true);
    expect(host.units.has(`hashd-${BE1}.socket`)).toBe(true);
  });

  test("a rollback that raced the retirement heals: hashes retired here and wanted again come back from the store", async () => {
    const r = retirer({ kind: "retire" }, 0);
    await switchToFE2(r);
    await r.tick(later(100));
    expect([stateOf(FE1), stateOf(BE1)]).toEqual(["retired", "retired"]);

    aliases.set({ prod: FE1 }); // e.g. a rollback decided on another member that still ran FE1
    await r.tick(later(100));
    expect([FE1, BE1].map((h) => activator.isBusy(h))).toEqual([true, true]); // not awaited by the tick
    while (activator.isBusy(FE1) || activator.isBusy(BE1)) await Bun.sleep(1);
    for (const h of [FE1, BE1]) {
      expect(store.get(h)).toMatchObject({ everWanted: true, reactivated: false, generation: 2 });
      expect(store.events(h).find((e) => e.kind === "activating")?.message).toStartWith(
        "activated again by the agent: wanted again after it retired here",
      );
    }
    await Promise.all([FE1, BE1].map((h) => activator.checkReadiness(store.get(h) as Deployment)));
    expect([stateOf(FE1), stateOf(BE1)]).toEqual(["ready", "ready"]);
  });

  test("a hash deactivated by hand, or whose closure left the store, is not brought back", async () => {
    const r = retirer({ kind: "retire" }, 0);
    await switchToFE2(r);
    await r.tick(later(100));
    expect(stateOf(BE1)).toBe("retired");
    await activator.deactivate(FE2);
    host.valid.delete(pathOf(BE1)); // collected once its GC root was gone
    aliases.set({ prod: FE2, old: FE1 });
    await r.tick(later(100));
    await r.tick(later(100));
    expect(stateOf(FE2)).toBe("retired");
    expect(stateOf(BE1)).toBe("retired");
    // told once, and not looked for again while it stays wanted
    const checks = () => host.calls.filter((c) => c[0] === "nix-store" && c[2] === pathOf(BE1)).length;
    const checked = checks();
    expect(checked).toBeGreaterThan(0);
    await r.tick(later(100));
    expect(checks()).toBe(checked);
    expect(
      store
        .events(BE1)
        .filter((e) => e.kind === "not-revived")
        .map((e) => e.message),
    ).toEqual([
      `wanted again after it retired here: referenced by ${FE1}, but ${pathOf(BE1)} is gone from the store: activate it again by hand`,
    ]);
  });

  test("an activation that arrives while a retirement stops the hash waits for the stop, then activates it again", async () => {
    const r = retirer({ kind: "retire" }, 0);
    await switchToFE2(r);
    expect(stateOf(BE1)).toBe("draining");
    const openStop = gate("stop");
    const ticking = r.tick(later(100)); // BE1 retires: its units are stopping
    await Bun.sleep(1);
    expect(activator.isBusy(BE1)).toBe(true);
    const again = activator.activate({ path: pathOf(BE1) });
    await Bun.sleep(1);
    expect(stateOf(BE1)).toBe("draining"); // not undrained while its units go
    openStop();
    await ticking;
    const { deployment } = await again;
    expect(deployment).toMatchObject({ state: "activating", generation: 2, reactivated: true });
    expect(
      store
        .events(BE1)
        .map((e) => e.kind)
        .slice(0, 2),
    ).toEqual(["activating", "retired"]);
    expect(host.units.get(`hashd-${BE1}.socket`)).toBe("active");
  });
});
