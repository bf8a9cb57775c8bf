import { describe, expect, test } from "bun:test";
import type { RetentionPolicy } from "../aliases/alias-service.ts";
import { beforeStop, type PlanInput, type PlanRow, plan, RetirerMemory } from "./plan.ts";
import { type MemberView, RetirementPlanner } from "./planner.ts";

const FE1 = "f1".padEnd(32, "0");
const BE1 = "b1".padEnd(32, "0");
const FE2 = "f2".padEnd(32, "0");
const BE2 = "b2".padEnd(32, "0");
const REFS: Record<string, string[]> = { [FE1]: [BE1], [FE2]: [BE2] };

const row = (hash: string, extra: Partial<PlanRow> = {}): PlanRow => ({
  hash,
  state: "ready",
  refs: REFS[hash] ?? [],
  everWanted: true,
  reactivated: false,
  retiredByHand: false,
  activatedAt: 0,
  ...extra,
});

/** This host "a" alone, reporting its live rows, with prod on `target`. */
const input = (
  now: number,
  rows: PlanRow[],
  target: string | null,
  extra: Partial<PlanInput> = {},
): PlanInput => {
  const self: MemberView = {
    name: "a",
    status: "alive",
    hashes: rows
      .filter((r) => r.state !== "retired")
      .map((r) => ({ hash: r.hash, state: r.state, inFlight: 0, holds: 0, refs: [...r.refs] })),
  };
  const policy: RetentionPolicy = { kind: "retire" };
  return {
    now,
    members: [self],
    policy,
    roots: target === null ? [] : [{ hash: target, reason: "alias prod" }],
    formerRoots: [],
    rows,
    activations: [],
    busy: [],
    ...extra,
  };
};

const memory = (quietMs = 5000, saved: string[] = []) =>
  new RetirerMemory(new RetirementPlanner({ quietMs }), saved);

describe("plan: everything a retirer tick decides, without I/O", () => {
  test("a kept event per change of verdict of a hash once wanted; none per quiet tick, none for a hash never wanted", () => {
    const m = memory();
    const rows = [row(FE1, { state: "draining" }), row(BE1), row(FE2, { everWanted: false })];
    const first = plan(m, input(0, rows, null));
    expect(first.events).toEqual([
      { hash: FE1, kind: "kept", message: "draining, quiet for 0 ms of 5000" },
      { hash: BE1, kind: "kept", message: `draining, kept: dependent ${FE1} is draining on a` },
    ]);
    // FE2 has a verdict (never aliased) but, never wanted here, no event
    expect(first.planned.verdicts.get(FE2)?.cause.kind).toBe("never-wanted");
    rows[1] = row(BE1, { state: "draining" });
    expect(plan(m, input(1000, rows, null)).events).toEqual([]); // quiet longer, blocked by the same
    // wanted again: no event (the verdict is remembered), then unwanted again: an event again
    expect(plan(m, input(2000, rows, FE1)).events).toEqual([]);
    const again = plan(m, input(3000, rows, null));
    expect(again.events.map((e) => e.hash)).toEqual([FE1, BE1]);
  });

  test("the verdict of a hash that left the rows is forgotten: back, it is told again", () => {
    const m = memory();
    const draining = [row(FE1, { state: "draining" })];
    expect(plan(m, input(0, draining, null)).events).toHaveLength(1);
    expect(plan(m, input(1000, [], null)).events).toEqual([]);
    expect(plan(m, input(2000, draining, null)).events).toHaveLength(1);
  });

  test("the known members: seeded from the database, returned to save only when they change", () => {
    const m = memory(5000, ["a", "b", "c"]);
    const rows = [row(FE1, { state: "draining" })];
    const seen = plan(m, input(0, rows, null));
    expect(seen.knownMembers).toBeNull(); // a, b and c as saved
    // a fresh gossip view (only itself): the majority is of the three it knew
    expect(seen.planned.verdicts.get(FE1)?.reason).toContain("sees 1 of 3 members, not a majority");
    const withD = input(1000, rows, null);
    const d: MemberView = { name: "d", status: "alive", hashes: [] };
    const four = ["a", "b", "c", "d"];
    expect(plan(m, { ...withD, members: [...withD.members, d] }).knownMembers).toEqual(four);
    // not saved (the database refused?): asked again
    expect(plan(m, { ...withD, now: 2000, members: [...withD.members, d] }).knownMembers).toEqual(four);
    m.membersSaved(four);
    expect(plan(m, { ...withD, now: 3000, members: [...withD.members, d] }).knownMembers).toBeNull();
  });

  test("no action on a hash with an activation or stop under way; the planner's result keeps it", () => {
    const m = memory(0);
    const rows = [row(FE1), row(BE1), row(FE2), row(BE2)];
    const p = plan(m, input(0, rows, FE2, { busy: [FE1] }));
    expect(p.planned.actions.map((a) => [a.kind, a.hash])).toEqual([
      ["drain", FE1],
      ["retire", FE1],
      ["drain", BE1],
    ]);
    expect(p.actions.map((a) => [a.kind, a.hash])).toEqual([["drain", BE1]]);
  });

  test("an activation that has not read its references holds every retirement here", () => {
    const m = memory(0);
    const rows = [row(FE1, { state: "draining" })];
    const p = plan(m, input(0, rows, null, { activations: [{ hash: FE2, refs: null }] }));
    expect(p.actions).toEqual([]);
    expect(p.planned.verdicts.get(FE1)?.reason).toContain(`activation of ${FE2} here has not read`);
  });

  test("revive: a hash the retirer retired, wanted again; not one retired by hand, nor one whose closure is gone, until unwanted again", () => {
    const m = memory(0);
    const rows = [row(FE1, { state: "retired" }), row(BE1, { state: "retired", retiredByHand: true })];
    const revives = (p: ReturnType<typeof plan>) =>
      p.actions.filter((a) => a.kind === "revive").map((a) => a.hash);
    expect(revives(plan(m, input(0, rows, FE1)))).toEqual([FE1]); // BE1 is retired by hand
    m.closureGone(FE1);
    expect(revives(plan(m, input(1000, rows, FE1)))).toEqual([]);
    expect(revives(plan(m, input(2000, rows, null)))).toEqual([]); // unwanted: forgotten ...
    expect(revives(plan(m, input(3000, rows, FE1)))).toEqual([FE1]); // ... so looked for again
  });

  test("policy keep: an unwanted hash is scaled to zero, never drained", () => {
    const m = memory(0);
    const p = plan(m, input(0, [row(FE1)], null, { policy: { kind: "keep" } }));
    expect(p.actions.map((a) => a.kind)).toEqual(["scale-to-zero"]);
  });
});

describe("beforeStop: the alias table and the row read again right before the units stop", () => {
  /** FE1 in `fe`, BE1 draining; the row read again is `now` (generation 1 was planned on) */
  const facts = (
    fe: PlanRow["state"],
    target: string | null,
    now: { state: PlanRow["state"]; generation: number } = { state: "draining", generation: 1 },
  ) => {
    const rows = [row(FE1, { state: fe }), row(BE1, { state: "draining" })];
    const { roots, members } = input(0, rows, target);
    return { now: 0, row: now, roots, members, rows };
  };

  test("stops a hash still draining at the generation planned on, and unwanted", () => {
    expect(beforeStop(BE1, 1, facts("retired", null))).toEqual({ stop: true });
  });

  test("leaves it silently if it is no longer draining, or was activated again since", () => {
    expect(beforeStop(FE1, 1, facts("draining", null, { state: "ready", generation: 1 }))).toEqual({
      stop: false,
    });
    expect(beforeStop(FE1, 1, facts("draining", null, { state: "draining", generation: 2 }))).toEqual({
      stop: false,
    });
    expect(beforeStop(FE1, 1, { ...facts("draining", null), row: undefined })).toEqual({ stop: false });
  });

  test("keeps it, with an event, when an alias reaches it now (through the refs of a retired row too)", () => {
    expect(beforeStop(FE1, 1, facts("draining", FE1))).toEqual({
      stop: false,
      event: {
        hash: FE1,
        kind: "kept",
        message: "not retired: wanted again since the planner ran (alias prod)",
      },
    });
    // FE1 retired here (nobody reports it) and rolled back to: its backend is wanted through its row
    expect(beforeStop(BE1, 1, facts("retired", FE1))).toEqual({
      stop: false,
      event: {
        hash: BE1,
        kind: "kept",
        message: `not retired: wanted again since the planner ran (referenced by ${FE1})`,
      },
    });
  });
});

describe("sticky use: a hash with sticky clients that may come back is wanted until then", () => {
  /** BE2 is unwanted here; member "b" reports sticky clients on FE1 until `until` */
  const withSticky = (now: number, until: number): PlanInput => {
    const base = input(now, [row(FE1), row(BE1), row(FE2), row(BE2)], FE2);
    const b: MemberView = {
      name: "b",
      status: "alive",
      hashes: [{ hash: FE1, state: "ready", inFlight: 0, holds: 0, refs: [BE1], stickyUntil: until }],
    };
    return { ...base, members: [...base.members, b] };
  };

  test("plan keeps it (and what it references) until stickyUntil, then drains it", () => {
    const m = memory();
    const at = Date.UTC(2026, 0, 1, 12, 0, 0);
    const p = plan(m, withSticky(at, at + 5_000));
    expect(p.actions).toEqual([]);
    expect(p.planned.verdicts.get(FE1)?.reason).toBe("wanted: sticky clients until 12:00:05 UTC (b)");
    expect(p.planned.verdicts.get(BE1)?.reason).toBe(`wanted: referenced by ${FE1}`);
    // the time moves on with the clients: still the same decision, no event
    expect(plan(m, withSticky(at + 1000, at + 9_000)).events).toEqual([]);
    const after = plan(m, withSticky(at + 9_000, at + 9_000));
    expect(after.actions.map((a) => `${a.kind} ${a.hash}`)).toEqual([`drain ${FE1}`, `drain ${BE1}`]);
  });

  test("beforeStop reads sticky use again: one that began since the plan keeps the hash", () => {
    const at = Date.UTC(2026, 0, 1, 12, 0, 0);
    const rows = [row(FE1, { state: "draining" }), row(BE1, { state: "draining" })];
    const { roots, members } = withSticky(at, at + 1);
    const facts = { now: at, row: { state: "draining" as const, generation: 1 }, roots, members, rows };
    expect(beforeStop(FE1, 1, facts)).toEqual({
      stop: false,
      event: {
        hash: FE1,
        kind: "kept",
        message: "not retired: wanted again since the planner ran (sticky clients until 12:00:00 UTC (b))",
      },
    });
    expect(beforeStop(FE1, 1, { ...facts, now: at + 1 })).toEqual({ stop: true });
  });
});
