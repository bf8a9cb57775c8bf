/**
 * Issue 17, item 7: events record decisions, not ticks. Ten minutes of simulated traffic (a
 * virtual clock, no real waiting) through the retirer's own decision step (`plan`, the real
 * RetirementPlanner) into a real StateStore (bun:sqlite, in memory): in-flight counts, holds,
 * sticky use and the idle scaler change on every tick, and the events table must stay flat while
 * nothing is decided; it grows when a decision really changes. The status page's "why" is the
 * latest verdict's text (Retirer.verdicts), so it must carry the numbers of the current tick.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { DeploymentState } from "../../model/deployment.ts";
import type { HashReport } from "../../model/reports.ts";
import type { Root } from "../../model/roots.ts";
import { StateStore } from "../state/store.ts";
import { effectOf } from "./effects.ts";
import { type PlanRow, plan, RetirerMemory } from "./plan.ts";
import { type MemberView, type PlannerResult, RetirementPlanner } from "./planner.ts";
import type { VerdictCause } from "./verdicts.ts";

const FE1 = "f1".padEnd(32, "0");
const BE1 = "b1".padEnd(32, "0");
const FE2 = "f2".padEnd(32, "0");
const BE2 = "b2".padEnd(32, "0");
const REFS: Record<string, string[]> = { [FE1]: [BE1], [FE2]: [BE2], [BE1]: [], [BE2]: [] };
const START = Date.UTC(2026, 0, 1, 12, 0, 0);
const TICK_MS = 1000;
const MINUTE = 60_000;

/** A deterministic PRNG (mulberry32): the same traffic on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One agent ("a") of three, whose retirer ticks every second: the old version FE1 -> BE1 drains
 * with traffic and holds on every member, the new one FE2 -> BE2 is aliased prod and has sticky
 * clients whose time moves on with every request.
 */
class Cluster {
  now = START;
  readonly store = new StateStore(":memory:", () => this.now);
  readonly memory = new RetirerMemory(new RetirementPlanner({ quietMs: 30_000 }), []);
  readonly rows = new Map<string, PlanRow>();
  /** the alias table as the alias service makes roots of it */
  roots: Root[] = [{ hash: FE2, reason: "alias prod" }];
  /** traffic on FE1 (the old version) on/off: while off, FE1 and BE1 may go quiet and retire */
  oldTraffic = true;
  /** the idle scaler's view of the new version on each member */
  private readonly random = rng(17);
  last: PlannerResult | undefined;

  constructor() {
    for (const hash of [FE1, BE1, FE2, BE2]) {
      const state: DeploymentState = hash === FE1 || hash === BE1 ? "draining" : "ready";
      this.rows.set(hash, {
        hash,
        state,
        refs: REFS[hash] ?? [],
        everWanted: true,
        reactivated: false,
        retiredByHand: false,
        activatedAt: START - 3_600_000,
      });
    }
  }

  eventCount(kind?: string): number {
    const q =
      kind === undefined
        ? this.store.db.query("SELECT count(*) AS n FROM events").get()
        : this.store.db.query("SELECT count(*) AS n FROM events WHERE kind = ?").get(kind);
    return (q as { n: number }).n;
  }

  /** What a member reports on a tick: numbers that change every time. */
  private report(member: string, local: boolean): HashReport[] {
    const r = this.random;
    const out: HashReport[] = [];
    for (const row of this.rows.values()) {
      if (row.state === "retired") continue;
      const old = row.hash === FE1 || row.hash === BE1;
      // the old version: in-flight 1-6 on some members and holds now and then, never all idle for
      // long while its traffic lasts; the new one: busy, its sticky clients' time moving on
      const busy = old ? this.oldTraffic && (member === "b" || r() < 0.6) : true;
      const stateHere: DeploymentState =
        row.state === "ready" || row.state === "idle" ? (r() < 0.3 ? "idle" : "ready") : row.state;
      out.push({
        hash: row.hash,
        state: local ? row.state : stateHere,
        inFlight: busy ? 1 + Math.floor(r() * 6) : 0,
        holds: busy && r() < 0.3 ? 1 + Math.floor(r() * 2) : 0,
        refs: [...row.refs],
        ...(row.hash === FE2 ? { stickyUntil: this.now + 60_000 + Math.floor(r() * 5_000) } : {}),
      });
    }
    return out;
  }

  /** One retirer tick, as Retirer.tick: plan, record its events, carry out its actions on the rows. */
  tick(): void {
    const members: MemberView[] = [
      { name: "a", status: "alive", hashes: this.report("a", true) },
      { name: "b", status: this.random() < 0.05 ? "suspect" : "alive", hashes: this.report("b", false) },
      { name: "c", status: "alive", hashes: this.report("c", false) },
    ];
    const decided = plan(this.memory, {
      now: this.now,
      members,
      policy: { kind: "retire" },
      roots: this.roots,
      formerRoots: [],
      rows: [...this.rows.values()],
      activations: [],
      busy: [],
    });
    this.last = decided.planned;
    for (const e of decided.events) this.store.event(e.hash, e.kind, e.message);
    for (const action of decided.actions) {
      const row = this.rows.get(action.hash);
      const effect = effectOf(
        row === undefined ? undefined : { state: row.state },
        action,
        row?.state === "ready",
      );
      if (row === undefined || effect?.kind !== "transition" || row.state !== effect.from) continue;
      row.state = effect.to;
      this.store.event(row.hash, effect.to, effect.reason); // store.transition's event
    }
  }

  run(ms: number): void {
    for (const until = this.now + ms; this.now < until; this.now += TICK_MS) this.tick();
  }

  reason(hash: string): string | undefined {
    return this.last?.verdicts.get(hash)?.reason;
  }
}

let open: Cluster | undefined;
const fresh = (): Cluster => {
  open = new Cluster();
  return open;
};
afterEach(() => open?.store.close());

describe("events record decisions, not ticks (issue 17)", () => {
  test("10 minutes of changing in-flight counts, holds and sticky use add no event while nothing is decided", () => {
    const c = fresh();
    c.run(MINUTE); // the first verdicts are decisions: recorded once
    const start = c.eventCount();
    expect(start).toBeGreaterThan(0);
    const reasons = new Set<string>();
    for (let minute = 0; minute < 10; minute++) {
      c.run(MINUTE);
      reasons.add(c.reason(FE1) ?? "");
    }
    const grown = c.eventCount() - start;
    // flat: fewer than one row per simulated minute (in fact none)
    expect(grown).toBeLessThan(10);
    expect(grown).toBe(0);
    // ... while the verdict the status page shows carries the numbers of the tick it was made on
    expect(reasons.size).toBeGreaterThan(1);
    expect(c.reason(FE1)).toMatch(/^draining, kept: \d+ in flight and \d+ hold\(s\) on [abc]$/);
    expect(c.reason(BE1)).toBe(`draining, kept: dependent ${FE1} is draining on a`);
    expect(c.reason(FE2)).toMatch(/^wanted: alias prod$/);
  });

  test("the same 10 minutes compared as before (every fact of the verdict, numbers included) write an event per tick or so", () => {
    // what the retirer did before: sameVerdict compared every field but the time spent quiet
    const c = fresh();
    let old = 0;
    const last = new Map<string, string>();
    const strip = (v: VerdictCause) => JSON.stringify(v.kind === "quiet" ? { ...v, quietForMs: 0 } : v);
    for (let t = 0; t < 11 * 60; t++) {
      c.run(TICK_MS);
      for (const [hash, v] of c.last?.verdicts ?? []) {
        if (v.wanted) continue;
        const key = strip(v.cause);
        if (last.get(hash) !== key) old++;
        last.set(hash, key);
      }
    }
    expect(old).toBeGreaterThan(300); // the noise the issue saw: most ticks wrote one
    expect(c.eventCount("kept")).toBeLessThan(5);
  });

  test("a decision that really changes writes an event: wanted and unwanted again, the dependent gone, retired", () => {
    const c = fresh();
    c.run(MINUTE);
    const kept = () => c.eventCount("kept");
    const at = kept();

    // a rollback to FE1, then forward again: FE1 and BE1 wanted (undrained), then unwanted again
    c.roots = [{ hash: FE1, reason: "alias prod" }];
    c.run(5 * TICK_MS);
    expect(c.rows.get(FE1)?.state).toBe("idle"); // undrained (the service counts as stopped here)
    expect(kept()).toBe(at); // wanted: no `kept` event (the undrain is a transition)
    c.roots = [{ hash: FE2, reason: "alias prod" }];
    c.run(MINUTE);
    // FE1 kept again; BE1 kept by its dependent FE1, then by FE1 draining (a step of its own)
    expect(
      c.store
        .events(undefined, 100)
        .filter((e) => e.kind === "kept")
        .slice(0, kept() - at)
        .map((e) => e.message.replace(/\d+ (in flight|hold)/g, "N $1"))
        .reverse(),
    ).toEqual([
      "draining, kept: N in flight and N hold(s) on b",
      `draining, kept: dependent ${FE1} is idle on a`,
      `draining, kept: dependent ${FE1} is draining on a`,
    ]);
    const rollback = kept();

    // the old version's traffic ends: FE1 goes quiet and retires, then BE1 (top-down)
    c.oldTraffic = false;
    c.run(31 * TICK_MS);
    expect(c.rows.get(FE1)?.state).toBe("retired");
    c.run(2 * MINUTE);
    expect(c.rows.get(BE1)?.state).toBe("retired");
    const messages = c.store
      .events(undefined, 100)
      .filter((e) => e.kind === "kept")
      .slice(0, kept() - rollback)
      .map(
        (e) =>
          `${e.hash === FE1 ? "FE1" : "BE1"}: ${e.message.replace(/\d+ (ms|of)/g, "N $1").replace(/of \d+/, "of N")}`,
      )
      .reverse();
    expect(messages).toEqual([
      "FE1: retired: unwanted, unreferenced and idle everywhere",
      // the dependent is gone: BE1 waits for its own work to end (busy or quiet, one decision)
      "BE1: draining, quiet for N ms of N",
      "BE1: retired: unwanted, unreferenced and idle everywhere",
    ]);
    // and nothing more while the new version's numbers keep changing
    const end = c.eventCount();
    c.run(10 * MINUTE);
    expect(c.eventCount()).toBe(end);
  });
});
