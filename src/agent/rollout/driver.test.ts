import { describe, expect, test } from "bun:test";
import type { AliasRecord, AliasTarget } from "../../model/alias-record.ts";
import { bucketIndex, emptyCounts, type RequestCounts } from "../../model/request-stats.ts";
import { startGuard, startRollout } from "../../model/rollout.ts";
import type { RolloutState } from "../../model/rollout-state.ts";
import { ROLLOUT_EVENTS, RolloutDriver, type RolloutIo, rolloutWrite } from "./driver.ts";

const OLD = "a1".padEnd(32, "0");
const NEW = "b1".padEnd(32, "0");

/** How a hash behaves: the share of its requests that fail, and its latency. */
interface Behaviour {
  errorRate: number;
  latencyMs: number;
}

interface Write {
  by: string;
  at: number;
  hash: string;
  split: AliasTarget[] | undefined;
  rollout: RolloutState;
  basis: AliasRecord;
}

/**
 * Members that each serve `rps` requests a second for the alias `prod`, split as its record says
 * (replication is instant), and count them per hash as their ingress would; one alias table that
 * every member's driver reads and writes; each member's own view of who is alive.
 */
class FakeCluster {
  now = 0;
  readonly table = new Map<string, AliasRecord>();
  readonly writes: Write[] = [];
  readonly events: { by: string; kind: string; message: string; hash?: string }[] = [];
  readonly counts = new Map<string, Map<string, RequestCounts>>();
  /** per member, whom it sees alive; a member missing here is down (it neither serves nor ticks) */
  readonly views = new Map<string, string[]>();
  readonly drivers = new Map<string, RolloutDriver>();
  readonly behaviour = new Map<string, Behaviour>();
  /** the wiring's answer when the alias moved since the driver read it: refuse the write */
  refuseWrites = false;
  private hlc = 0;

  constructor(
    readonly members: string[],
    readonly rps = 100,
  ) {
    for (const m of members) {
      this.counts.set(m, new Map());
      this.drivers.set(m, new RolloutDriver(this.io(m)));
    }
    this.heal();
    this.behaviour.set(OLD, { errorRate: 0.001, latencyMs: 50 });
    this.behaviour.set(NEW, { errorRate: 0.001, latencyMs: 50 });
  }

  /** Every member up and seeing every other. */
  heal(): void {
    for (const m of this.members) this.views.set(m, [...this.members]);
  }

  /** `m` is down: the others see it dead, its counts are no longer reported. */
  kill(m: string): void {
    this.views.delete(m);
    for (const [, seen] of this.views) seen.splice(seen.indexOf(m), 1);
  }

  /** `m` is up again (its agent restarted: its counts begin again now). */
  revive(m: string): void {
    this.counts.set(m, new Map());
    this.drivers.set(m, new RolloutDriver(this.io(m)));
    this.views.set(m, []);
    for (const [, seen] of this.views) if (!seen.includes(m)) seen.push(m);
    this.views.set(m, [...(this.views.get(this.members.find((x) => x !== m) as string) as string[])]);
  }

  put(name: string, hash: string, split: AliasTarget[] | undefined, rollout: RolloutState | undefined): void {
    const r: AliasRecord = {
      name,
      hash,
      previous: [],
      hlc: { wall: this.now, logical: this.hlc++ },
      origin: "operator",
    };
    if (split) r.split = split;
    if (rollout) r.rollout = rollout;
    this.table.set(name, r);
  }

  start(state: RolloutState): void {
    const w = rolloutWrite(state);
    this.put("prod", w.hash, w.split, state);
  }

  /** Seeds every member's lifetime counts of `hash` (traffic from before the rollout). */
  seed(hash: string, requests: number): void {
    for (const m of this.members) this.add(m, hash, requests);
  }

  private add(member: string, hash: string, n: number): void {
    const b = this.behaviour.get(hash) as Behaviour;
    const byHash = this.counts.get(member) as Map<string, RequestCounts>;
    const c = byHash.get(hash) ?? emptyCounts(this.now);
    const errors = Math.floor((c.requests + n) * b.errorRate) - Math.floor(c.requests * b.errorRate);
    const buckets = [...c.buckets];
    buckets[bucketIndex(b.latencyMs)] = (buckets[bucketIndex(b.latencyMs)] ?? 0) + n;
    byHash.set(hash, { ...c, requests: c.requests + n, errors: c.errors + errors, buckets });
  }

  /** One second of traffic on every member that is up, then a tick of every driver that is up. */
  second(): void {
    this.now += 1_000;
    const r = this.table.get("prod") as AliasRecord;
    const split = r.split ?? [{ hash: r.hash as string, weight: 100 }];
    for (const m of this.views.keys())
      for (const t of split) this.add(m, t.hash, Math.round((this.rps * t.weight) / 100));
    for (const m of this.views.keys()) this.drivers.get(m)?.tick();
  }

  run(seconds: number, until?: () => boolean): void {
    for (let i = 0; i < seconds && !until?.(); i++) this.second();
  }

  rollout(): RolloutState {
    return (this.table.get("prod") as AliasRecord).rollout as RolloutState;
  }

  private io(self: string): RolloutIo {
    return {
      self: () => self,
      aliveMembers: () => [...(this.views.get(self) ?? [])],
      knownMemberCount: () => this.members.length,
      aliasRecords: () => [...this.table.values()],
      countsOf: (hash) => {
        const out = new Map<string, RequestCounts>();
        for (const m of this.views.get(self) ?? []) {
          const c = this.counts.get(m)?.get(hash);
          if (c) out.set(m, c);
        }
        return out;
      },
      write: (name, hash, split, rollout, basis) => {
        if (this.refuseWrites) return false;
        this.writes.push({ by: self, at: this.now, hash, split, rollout, basis });
        this.put(name, hash, split, rollout);
        (this.table.get(name) as AliasRecord).origin = self;
        return true;
      },
      event: (kind, message, hash) => this.events.push({ by: self, kind, message, hash }),
      now: () => this.now,
    };
  }
}

const done = (c: FakeCluster) => () => c.rollout().status !== "running";

describe("rolloutWrite: the alias value for a rollout state", () => {
  const s = startRollout({ from: OLD, to: NEW, now: 0 });
  test("the split at the step, the heaviest target as the hash", () => {
    expect(rolloutWrite(s)).toEqual({
      hash: OLD,
      split: [
        { hash: OLD, weight: 95 },
        { hash: NEW, weight: 5 },
      ],
    });
    expect(rolloutWrite({ ...s, step: 2 }).hash).toBe(OLD); // 50/50: the first on a tie
  });
  test("100% of the canary at the last step and when done; 100% of the baseline once aborted", () => {
    expect(rolloutWrite({ ...s, step: 3 })).toEqual({ hash: NEW, split: undefined });
    expect(rolloutWrite({ ...s, step: 3, status: "done" })).toEqual({ hash: NEW, split: undefined });
    expect(rolloutWrite({ ...s, step: 1, status: "aborted" })).toEqual({ hash: OLD, split: undefined });
    expect(rolloutWrite(startGuard({ from: OLD, to: NEW, now: 0 }))).toEqual({ hash: NEW, split: undefined });
  });
});

describe("RolloutDriver on a fake cluster", () => {
  test("a write the wiring refuses (the alias moved meanwhile) records no event and skips no step", () => {
    const c = new FakeCluster(["a", "b", "c"]);
    c.start(startRollout({ from: OLD, to: NEW, now: 0 }));
    c.refuseWrites = true;
    c.run(120);
    expect(c.writes).toEqual([]);
    expect(c.events.filter((e) => e.kind !== "rollout-waiting")).toEqual([]);
    expect(c.rollout().step).toBe(0);
    c.refuseWrites = false;
    c.run(600, done(c));
    expect(c.writes.map((w) => [w.rollout.step, w.rollout.status])).toEqual([
      [1, "running"],
      [2, "running"],
      [3, "running"],
      [3, "done"],
    ]);
  });

  test("a good canary walks 5, 25, 50, 100 and is done, one write per step, by the lowest-named member", () => {
    const c = new FakeCluster(["a", "b", "c"]);
    c.start(startRollout({ from: OLD, to: NEW, now: 0 }));
    c.run(600, done(c));
    expect(c.rollout().status).toBe("done");
    expect(c.writes.map((w) => w.by)).toEqual(["a", "a", "a", "a"]);
    expect(c.writes.map((w) => w.split?.map((t) => t.weight))).toEqual([
      [75, 25],
      [50, 50],
      undefined,
      undefined,
    ]);
    expect(c.writes.map((w) => [w.rollout.step, w.rollout.status])).toEqual([
      [1, "running"],
      [2, "running"],
      [3, "running"],
      [3, "done"],
    ]);
    // each step lasted its step time (judged every 5 s)
    const at = c.writes.map((w) => w.at);
    for (let i = 1; i < at.length; i++) expect((at[i] as number) - (at[i - 1] as number)).toBe(60_000);
    expect(c.table.get("prod")).toMatchObject({ hash: NEW, origin: "a" });
    expect(c.table.get("prod")?.split).toBeUndefined();
    expect(c.writes[0]?.rollout.note).toMatch(/^step 2 \(25%\) after step 1 passed: error rate /);
    expect(c.writes[3]?.rollout.note).toMatch(/^done: step 4 \(100%\) passed: /);
    expect(c.events.map((e) => e.kind)).toEqual([
      ROLLOUT_EVENTS.advanced,
      ROLLOUT_EVENTS.advanced,
      ROLLOUT_EVENTS.advanced,
      ROLLOUT_EVENTS.done,
    ]);
    expect(c.events.every((e) => e.hash === NEW && e.message.startsWith("prod: "))).toBe(true);
    // every write names the record it followed
    expect(c.writes[1]?.basis.rollout?.step).toBe(1);
  });

  test("a canary failing 30% of its requests is aborted in its first step, within seconds, in one write back to the old hash", () => {
    const c = new FakeCluster(["a", "b", "c"]);
    c.behaviour.set(NEW, { errorRate: 0.3, latencyMs: 50 });
    c.start(startRollout({ from: OLD, to: NEW, now: 0 }));
    c.run(600, done(c));
    expect(c.writes).toHaveLength(1);
    const w = c.writes[0] as Write;
    // the driver's first tick (1 s) takes the reading; its first judgement, 5 s later, aborts
    expect(w.at).toBe(6_000);
    expect(w).toMatchObject({ by: "a", hash: OLD, split: undefined });
    expect(w.rollout).toMatchObject({ status: "aborted", step: 0 });
    expect(w.rollout.note).toMatch(
      /^aborted at step 1 \(5%\): error rate 3\d(\.\d)?% over 75 requests vs 0% baseline, limit 1%: 2\d errors, more than 200 requests may have$/,
    );
    expect(c.events).toEqual([
      { by: "a", kind: ROLLOUT_EVENTS.aborted, message: `prod: ${w.rollout.note}`, hash: NEW },
    ]);
    expect(c.table.get("prod")).toMatchObject({ hash: OLD });
    expect(c.table.get("prod")?.split).toBeUndefined();
  });

  test("a slow canary is aborted on p99 once it has minRequests requests", () => {
    const c = new FakeCluster(["a", "b", "c"]);
    c.behaviour.set(NEW, { errorRate: 0, latencyMs: 400 });
    c.start(startRollout({ from: OLD, to: NEW, now: 0 }));
    c.run(600, done(c));
    expect(c.writes).toHaveLength(1);
    const w = c.writes[0] as Write;
    // 15 canary requests a second from the reading at 1 s, judged every 5 s: 150 at 11 s, 225 at 16 s
    expect(w.at).toBe(16_000);
    expect(w.rollout.note).toMatch(
      /^aborted at step 1 \(5%\): p99 \d+ ms vs \d+ ms baseline \(\d+(\.\d)?x, limit 1\.5x\) over 225 requests$/,
    );
    expect(w.hash).toBe(OLD);
  });

  test("the driver dies mid-rollout: the next member goes on from the recorded step, none skipped or repeated; back, it drives again", () => {
    const c = new FakeCluster(["a", "b", "c"]);
    c.start(startRollout({ from: OLD, to: NEW, now: 0 }));
    c.run(80); // a advanced to step 2 (25%) at 60 s
    expect(c.rollout().step).toBe(1);
    c.kill("a");
    c.run(90); // b takes over, step 3 (50%) at 120 s: the step's time runs from the record
    expect(c.rollout().step).toBe(2);
    c.revive("a");
    c.run(600, done(c));
    expect(c.rollout().status).toBe("done");
    expect(c.writes.map((w) => [w.by, w.rollout.step, w.rollout.status])).toEqual([
      ["a", 1, "running"],
      ["b", 2, "running"],
      ["a", 3, "running"],
      ["a", 3, "done"],
    ]);
    // b read the counts at its first tick after the takeover (81 s) and judged every 5 s from
    // there: the step's time (from 60 s) was over at 120 s, b's first judgement after it is at 121 s
    const b = c.writes[1] as Write;
    expect(b.at).toBe(121_000);
    expect(b.rollout.note).toMatch(/^step 3 \(50%\) after step 2 passed: /);
    // b forgot the rollout once a drove again
    expect(c.drivers.get("b")?.lastJudgement("prod", c.rollout())).toBeUndefined();
  });

  test("a takeover late in a step waits for minRequests of its own measurement", () => {
    const c = new FakeCluster(["a", "b", "c"], 10); // 0.5 canary requests a second per member at 5%
    c.start(startRollout({ from: OLD, to: NEW, now: 0, limits: { minRequests: 20 } }));
    c.run(55);
    c.kill("a");
    c.run(30);
    // b reads at 56 s and sees 2 canary requests a second (b and c): 10 at 61 s, when the step's
    // time is over (inconclusive: wait), 20 at 66 s (pass)
    expect(c.writes.map((w) => [w.by, w.at, w.rollout.step])).toEqual([["b", 66_000, 1]]);
    expect(c.writes[0]?.rollout.note).toMatch(
      /^step 2 \(25%\) after step 1 passed: error rate 0% over 20 requests /,
    );
  });

  test("no majority, no driver: a member cut off alone does nothing, the majority side drives", () => {
    const c = new FakeCluster(["a", "b", "c"]);
    c.start(startRollout({ from: OLD, to: NEW, now: 0 }));
    // a sees only itself, b and c see each other
    c.views.set("a", ["a"]);
    c.views.set("b", ["b", "c"]);
    c.views.set("c", ["b", "c"]);
    c.run(600, done(c));
    expect(c.rollout().status).toBe("done");
    expect(new Set(c.writes.map((w) => w.by))).toEqual(new Set(["b"]));
  });

  test("an even split: neither half drives", () => {
    const c = new FakeCluster(["a", "b", "c", "d"]);
    c.start(startRollout({ from: OLD, to: NEW, now: 0 }));
    c.views.set("a", ["a", "b"]);
    c.views.set("b", ["a", "b"]);
    c.views.set("c", ["c", "d"]);
    c.views.set("d", ["c", "d"]);
    c.run(600);
    expect(c.writes).toEqual([]);
    expect(c.rollout()).toMatchObject({ status: "running", step: 0 });
  });

  test("a paused rollout: nothing, however long", () => {
    const c = new FakeCluster(["a", "b", "c"]);
    c.start({ ...startRollout({ from: OLD, to: NEW, now: 0 }), status: "paused" });
    c.run(600);
    expect(c.writes).toEqual([]);
    expect(c.events).toEqual([]);
  });

  test("inconclusive past the step time: no write, one waiting event for the step", () => {
    const c = new FakeCluster(["a", "b", "c"], 20); // one canary request a second per member at 5%
    c.start(startRollout({ from: OLD, to: NEW, now: 0, limits: { minRequests: 1_000 } }));
    c.run(200);
    expect(c.writes).toEqual([]);
    expect(c.events).toHaveLength(1);
    expect(c.events[0]?.kind).toBe(ROLLOUT_EVENTS.waiting);
    expect(c.events[0]?.message).toMatch(
      /^prod: step 1 \(5%\) waits past its step time: inconclusive: \d+ of 1,000 requests$/,
    );
  });

  test("a guard passes against the old hash's lifetime numbers, or switches back when the new one fails", () => {
    const good = new FakeCluster(["a", "b", "c"]);
    good.seed(OLD, 10_000);
    good.start(startGuard({ from: OLD, to: NEW, now: 0 }));
    good.run(600, done(good));
    // first tick at 1 s, judged every 5 s: the first judgement after the 60 s watch is at 61 s
    expect(good.writes.map((w) => [w.at, w.hash, w.rollout.status])).toEqual([[61_000, NEW, "done"]]);
    expect(good.writes[0]?.rollout.note).toMatch(
      /^guard passed after 60 s: error rate 0\.1% over 18,000 requests vs 0\.1% baseline, limit 1%; p99 \d+ ms vs \d+ ms baseline \(1x\)$/,
    );

    const bad = new FakeCluster(["a", "b", "c"]);
    bad.seed(OLD, 10_000);
    bad.behaviour.set(NEW, { errorRate: 0, latencyMs: 900 });
    bad.start(startGuard({ from: OLD, to: NEW, now: 0 }));
    bad.run(600, done(bad));
    expect(bad.writes.map((w) => [w.at, w.hash, w.split, w.rollout.status])).toEqual([
      [6_000, OLD, undefined, "aborted"],
    ]);
    expect(bad.writes[0]?.rollout.note).toMatch(
      /^guard aborted, back to a1000000: p99 \d+ ms vs \d+ ms baseline/,
    );
  });

  test("a member's counts that began before the window count from when it was first seen, not in full", () => {
    const c = new FakeCluster(["a", "b", "c"]);
    c.start(startRollout({ from: OLD, to: NEW, now: 0 }));
    // c's earlier canary traffic (a preview by hash URL), with a thousand errors: not in the window
    c.behaviour.set(NEW, { errorRate: 1, latencyMs: 50 });
    const hidden = new Map(c.views);
    c.views.set("a", ["a", "b"]);
    c.views.set("b", ["a", "b"]);
    c.views.set("c", ["c"]);
    c.run(1); // a drives (2 of 3), reading without c
    (c.counts.get("c") as Map<string, RequestCounts>).set(NEW, {
      ...emptyCounts(0),
      requests: 1_000,
      errors: 1_000,
    });
    c.behaviour.set(NEW, { errorRate: 0.001, latencyMs: 50 });
    for (const [m, v] of hidden) c.views.set(m, v);
    c.run(600, done(c));
    expect(c.rollout().status).toBe("done");
  });
});
