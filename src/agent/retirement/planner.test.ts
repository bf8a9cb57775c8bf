import { describe, expect, test } from "bun:test";
import type { HashReport } from "../../model/reports.ts";
import type { MemberStatus } from "../gossip/types.ts";
import {
  DEAD_GRACE_MS,
  LEFT_GRACE_MS,
  type LocalHash,
  type MemberView,
  RetirementPlanner,
} from "./planner.ts";
import { wantedHashes } from "./wanted.ts";

const FE1 = "f1".padEnd(32, "0");
const BE1 = "b1".padEnd(32, "0");
const FE2 = "f2".padEnd(32, "0");
const BE2 = "b2".padEnd(32, "0");

const report = (hash: string, refs: string[] = [], extra: Partial<HashReport> = {}): HashReport => ({
  hash,
  state: "ready",
  inFlight: 0,
  holds: 0,
  refs,
  ...extra,
});
const member = (name: string, hashes: HashReport[], status: MemberStatus = "alive"): MemberView => ({
  name,
  status,
  hashes,
});
const local = (hash: string, state: LocalHash["state"] = "ready", keepForever = false): LocalHash => ({
  hash,
  state,
  keepForever,
  everWanted: true,
});

describe("wanted hashes", () => {
  test("roots and everything they reference, transitively, with the shortest reason", () => {
    const refs: Record<string, string[]> = { a: ["b"], b: ["c", "a"], c: [], d: ["c"] };
    const w = wantedHashes([{ hash: "a", reason: "alias prod" }], (h) => refs[h] ?? []);
    expect([...w.entries()]).toEqual([
      ["a", "alias prod"],
      ["b", "referenced by a"],
      ["c", "referenced by b"],
    ]);
  });
});

describe("retirement planner", () => {
  const quietMs = 1000;

  test("after a switch, the old frontend drains and retires first; the old backend only after it", () => {
    const p = new RetirementPlanner({ quietMs });
    const roots = [{ hash: FE2, reason: "alias prod" }];
    const hashes = [report(FE1, [BE1]), report(BE1), report(FE2, [BE2]), report(BE2)];
    const locals = [local(FE1), local(BE1), local(FE2), local(BE2)];
    let r = p.step({ now: 0, members: [member("a", hashes)], roots, local: locals });
    expect(r.actions).toEqual([
      { kind: "drain", hash: FE1, reason: "no alias, pin or wanted hash reaches it" },
      { kind: "drain", hash: BE1, reason: "no alias, pin or wanted hash reaches it" },
    ]);
    expect(r.verdicts.get(BE2)).toEqual({
      wanted: true,
      reason: `wanted: referenced by ${FE2}`,
      cause: { kind: "wanted", because: `referenced by ${FE2}` },
    });
    expect(r.verdicts.get(BE1)?.reason).toContain(`dependent ${FE1} is ready on a`);

    const draining = [local(FE1, "draining"), local(BE1, "draining"), local(FE2), local(BE2)];
    r = p.step({ now: 999, members: [member("a", hashes)], roots, local: draining });
    expect(r.actions).toEqual([]);
    r = p.step({ now: 1000, members: [member("a", hashes)], roots, local: draining });
    expect(r.actions.map((a) => [a.kind, a.hash])).toEqual([["retire", FE1]]);

    // FE1 reported retired: BE1 starts its own quiet period only now.
    const after = [report(FE1, [BE1], { state: "retired" }), report(BE1), report(FE2, [BE2]), report(BE2)];
    const left = [local(BE1, "draining"), local(FE2), local(BE2)];
    expect(p.step({ now: 1500, members: [member("a", after)], roots, local: left }).actions).toEqual([]);
    expect(
      p.step({ now: 2500, members: [member("a", after)], roots, local: left }).actions.map((a) => a.hash),
    ).toEqual([BE1]);
  });

  test.each([
    ["in flight on another member", member("b", [report(BE1, [], { inFlight: 2 })]), "2 in flight"],
    ["a hold on another member", member("b", [report(BE1, [], { holds: 1 })]), "1 hold(s) on b"],
    [
      "a dependent on a suspect member",
      member("b", [report(FE1, [BE1])], "suspect"),
      `dependent ${FE1} is ready on b (suspect)`,
    ],
    [
      "an idle dependent (its socket can still wake it)",
      member("b", [report(FE1, [BE1], { state: "idle" })]),
      "idle on b",
    ],
  ])("never stops while %s", (_, other, reason) => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const members = [member("a", [report(BE1, [], { state: "draining" })]), other, member("c", [])];
    for (const now of [0, 10_000, 1e9]) {
      const r = p.step({ now, members, roots: [], local: [local(BE1, "draining")] });
      expect(r.actions).toEqual([]);
      expect(r.verdicts.get(BE1)?.reason).toContain(reason);
    }
  });

  test("a dead member's reports no longer block once its grace is over", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const members = [
      member("a", [report(BE1, [], { state: "draining" })]),
      member("b", [report(FE1, [BE1], { inFlight: 5 })], "dead"),
      member("c", []),
    ];
    const step = (now: number) => p.step({ now, members, roots: [], local: [local(BE1, "draining")] });
    const first = step(1000);
    expect(first.actions).toEqual([]);
    expect(first.verdicts.get(BE1)?.reason).toContain(
      "dependent f1000000000000000000000000000000 is ready on b (dead)",
    );
    expect(step(1000 + DEAD_GRACE_MS - 1).actions).toEqual([]);
    expect(step(1000 + DEAD_GRACE_MS).actions.map((a) => a.kind)).toEqual(["retire"]);
  });

  test("a member declared dead by mistake (alive again within the grace) never lets a hash go", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const b = (status: MemberStatus) => member("b", [report(BE1, [], { inFlight: 1 })], status);
    const self = member("a", [report(BE1, [], { state: "draining" })]);
    for (const [now, status] of [
      [0, "alive"],
      [1000, "dead"],
      [3000, "alive"],
      [4000, "dead"],
      [8000, "dead"],
    ] as const) {
      const r = p.step({
        now,
        members: [self, b(status), member("c", [])],
        roots: [],
        local: [local(BE1, "draining")],
      });
      expect(r.actions).toEqual([]);
    }
  });

  test("the minority side of a partition retires nothing", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const members = [
      member("a", [report(BE1, [], { state: "draining" })]),
      member("b", [], "dead"),
      member("c", [], "dead"),
    ];
    const r = p.step({ now: 0, members, roots: [], local: [local(BE1, "draining")] });
    expect(r.actions).toEqual([]);
    expect(r.verdicts.get(BE1)?.reason).toContain("not a majority");
  });

  test("any blocker restarts the quiet period", () => {
    const p = new RetirementPlanner({ quietMs: 100 });
    const quiet = [member("a", [report(BE1, [], { state: "draining" })])];
    const busy = [member("a", [report(BE1, [], { state: "draining", inFlight: 1 })])];
    const step = (now: number, members: MemberView[]) =>
      p.step({ now, members, roots: [], local: [local(BE1, "draining")] }).actions;
    expect(step(0, quiet)).toEqual([]);
    expect(step(90, busy)).toEqual([]);
    expect(step(150, quiet)).toEqual([]);
    expect(step(249, quiet)).toEqual([]);
    expect(step(250, quiet).map((a) => a.kind)).toEqual(["retire"]);
  });

  test("a preview alias shares hashes with prod; removing it retires only what nothing else wants", () => {
    const PR = "p1".padEnd(32, "0"); // the PR's frontend, calling prod's backend BE2
    const p = new RetirementPlanner({ quietMs: 1 });
    const hashes = [report(FE2, [BE2]), report(BE2), report(PR, [BE2])];
    const locals = [local(FE2), local(BE2), local(PR)];
    const both = [
      { hash: FE2, reason: "alias prod" },
      { hash: PR, reason: "alias pr-7" },
    ];
    expect(p.step({ now: 0, members: [member("a", hashes)], roots: both, local: locals }).actions).toEqual(
      [],
    );
    // pr-7 removed: its frontend drains and retires; the shared backend stays (prod still wants it)
    const roots = [{ hash: FE2, reason: "alias prod" }];
    let r = p.step({ now: 1, members: [member("a", hashes)], roots, local: locals });
    expect(r.actions.map((a) => [a.kind, a.hash])).toEqual([["drain", PR]]);
    const draining = [local(FE2), local(BE2), local(PR, "draining")];
    r = p.step({ now: 2, members: [member("a", hashes)], roots, local: draining });
    expect(r.actions.map((a) => [a.kind, a.hash])).toEqual([["retire", PR]]);
    expect(r.verdicts.get(BE2)).toEqual({
      wanted: true,
      reason: `wanted: referenced by ${FE2}`,
      cause: { kind: "wanted", because: `referenced by ${FE2}` },
    });
  });

  test("rollback: a draining hash that is wanted again is undrained, never retired", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const r = p.step({
      now: 0,
      members: [
        member("a", [report(FE1, [BE1], { state: "draining" }), report(BE1, [], { state: "draining" })]),
      ],
      roots: [{ hash: FE1, reason: "alias prod" }],
      local: [local(FE1, "draining"), local(BE1, "draining")],
    });
    expect(r.actions).toEqual([
      { kind: "undrain", hash: FE1, reason: "wanted again: alias prod" },
      { kind: "undrain", hash: BE1, reason: `wanted again: referenced by ${FE1}` },
    ]);
  });

  test("a hash never aliased is kept; the first time it is wanted is recorded once", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const fresh = { ...local(FE2), everWanted: false };
    const r = p.step({ now: 0, members: [member("a", [report(FE2)])], roots: [], local: [fresh] });
    expect(r.actions).toEqual([]);
    expect(r.verdicts.get(FE2)?.reason).toContain("never aliased");
    const aliased = p.step({
      now: 1,
      members: [member("a", [report(FE2)])],
      roots: [{ hash: FE2, reason: "alias prod" }],
      local: [fresh],
    });
    expect(aliased.actions).toEqual([{ kind: "wanted", hash: FE2, reason: "alias prod" }]);
  });

  test("retention policy keep: unwanted hashes are scaled to zero, never retired", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const r = p.step({
      now: 0,
      members: [member("a", [report(BE1)])],
      roots: [],
      local: [local(BE1, "ready", true)],
    });
    expect(r.actions).toEqual([{ kind: "scale-to-zero", hash: BE1, reason: "unwanted; policy keep" }]);
  });
});

describe("retirement planner: the majority is of every member ever known", () => {
  const draining = [local(BE1, "draining")];
  const self = member("a", [report(BE1, [], { state: "draining" })]);

  test("members gossip has reaped after a long partition still count (the minority side stays put)", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    // all three known, then b and c are cut off: suspect, dead, and finally reaped from the table
    p.step({
      now: 0,
      members: [self, member("b", [report(FE1, [BE1])]), member("c", [])],
      roots: [],
      local: [],
    });
    for (const members of [[self, member("b", [], "dead"), member("c", [], "dead")], [self]]) {
      const r = p.step({ now: 60_000, members, roots: [], local: draining });
      expect(r.actions.filter((a) => a.kind === "retire")).toEqual([]);
      expect(r.verdicts.get(BE1)?.reason).toContain("sees 1 of 3 members, not a majority");
    }
  });

  test("a restarted agent starts from the members it remembered, not from its empty gossip view", () => {
    const before = new RetirementPlanner({ quietMs: 0 });
    before.step({ now: 0, members: [self, member("b", []), member("c", [])], roots: [], local: [] });
    expect(before.knownMembers()).toEqual(["a", "b", "c"]);
    const after = new RetirementPlanner({ quietMs: 0 });
    after.remember(before.knownMembers());
    const r = after.step({ now: 0, members: [self], roots: [], local: draining });
    expect(r.actions).toEqual([]);
    expect(r.verdicts.get(BE1)?.reason).toContain("not a majority");
  });

  test("a member that left counts until it has been gone for the left grace (an upgrade comes back)", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    p.remember(["a", "b", "c"]);
    const members = [self, member("b", [], "left"), member("c", [], "left")];
    const step = (now: number) => p.step({ now, members, roots: [], local: draining });
    const first = step(0);
    expect(first.actions).toEqual([]);
    expect(first.verdicts.get(BE1)?.reason).toContain("sees 1 of 3 members");
    expect(step(LEFT_GRACE_MS - 1).actions).toEqual([]);
    expect(step(LEFT_GRACE_MS).actions.map((a) => a.kind)).toEqual(["retire"]);
    expect(p.knownMembers()).toEqual(["a"]);
  });

  test("a member that left and came back (unseen, across a partition) still counts", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    p.step({
      now: 0,
      members: [self, member("b", []), member("c", []), member("d", [])],
      roots: [],
      local: [],
    });
    // b leaves (an upgrade) and is back at once on the other side of a partition with d
    const members = [self, member("b", [], "left"), member("c", []), member("d", [], "dead")];
    const r = p.step({ now: 60_000, members, roots: [], local: draining });
    expect(r.actions).toEqual([]);
    expect(r.verdicts.get(BE1)?.reason).toContain("sees 2 of 4 members, not a majority");
  });
});

describe("retirement planner: a hash never wanted here", () => {
  test("is marked wanted-once when another member reports it draining (this host missed the alias)", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const fresh = { ...local(FE1), everWanted: false };
    const members = [
      member("a", [report(FE1, [BE1])]),
      member("b", [report(FE1, [BE1], { state: "draining" })]),
    ];
    const r = p.step({ now: 0, members, roots: [], local: [fresh] });
    expect(r.actions).toEqual([{ kind: "wanted", hash: FE1, reason: "draining on b, so wanted once there" }]);
    expect(r.verdicts.get(FE1)?.reason).toContain("never aliased or pinned here");
  });

  test("is kept while no member drains it (a fresh deployment waiting for its alias)", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const fresh = { ...local(FE2), everWanted: false };
    const members = [member("a", [report(FE2, [BE2])]), member("b", [report(FE2, [BE2])])];
    expect(p.step({ now: 0, members, roots: [], local: [fresh] }).actions).toEqual([]);
  });
});

describe("retirement planner: a hash another member reports retired", () => {
  test("a copy deployed here before that report was first seen is wanted once; one deployed after is kept", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const members = [member("a", []), member("b", [report(FE1, [BE1], { state: "retired" })])];
    const before = { ...local(FE1), everWanted: false, since: 50 };
    const r = p.step({ now: 100, members, roots: [], local: [before] });
    expect(r.actions).toEqual([{ kind: "wanted", hash: FE1, reason: "retired on b, so wanted once there" }]);
    // deployed by hand after b's report was first seen (at 100): a new deployment, kept
    const after = { ...local(FE1), everWanted: false, since: 150 };
    expect(p.step({ now: 200, members, roots: [], local: [after] }).actions).toEqual([]);
    // a retired report is not a running dependent: it blocks nothing
    const be = local(BE1, "draining");
    const q = new RetirementPlanner({ quietMs: 0 });
    expect(q.step({ now: 0, members, roots: [], local: [be] }).actions).toEqual([
      { kind: "retire", hash: BE1, reason: "quiet on every member for 0 ms" },
    ]);
  });
});

describe("retirement planner: an earlier target of an alias", () => {
  const former = [{ hash: FE1, reason: "an earlier target of alias prod", until: 100 }];
  const members = [member("a", [report(FE1, [BE1]), report(BE1, [])])];

  test("deployed here before the alias moved on: wanted once, with what it references", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const mine = [
      { ...local(FE1), everWanted: false, since: 50 },
      { ...local(BE1), everWanted: false, since: 50 },
    ];
    const r = p.step({ now: 200, members, roots: [], formerRoots: former, local: mine });
    expect(r.actions).toEqual([
      {
        kind: "wanted",
        hash: FE1,
        reason: "an earlier target of alias prod, deployed here before the alias moved on",
      },
      { kind: "wanted", hash: BE1, reason: `referenced by ${FE1}, deployed here before the alias moved on` },
    ]);
  });

  test("deployed here after the alias moved on, or activated again by hand: kept", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const late = { ...local(FE1), everWanted: false, since: 150 };
    expect(p.step({ now: 200, members, roots: [], formerRoots: former, local: [late] }).actions).toEqual([]);
    const byHand = { ...local(FE1), everWanted: false, reactivated: true, since: 50 };
    expect(p.step({ now: 200, members, roots: [], formerRoots: former, local: [byHand] }).actions).toEqual(
      [],
    );
  });
});

describe("retirement planner: a member with no report yet", () => {
  test("holds everything until it reports (a restarted agent's old report is void, its services still run)", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const self = member("a", [report(BE1, [], { state: "draining" })]);
    const restarted = { ...member("b", []), reported: false };
    const r = p.step({
      now: 0,
      members: [self, restarted, member("c", [])],
      roots: [],
      local: [local(BE1, "draining")],
    });
    expect(r.actions).toEqual([]);
    expect(r.verdicts.get(BE1)?.reason).toContain("no report from b yet (it just joined or restarted)");
    // its report arrives: it runs a dependent
    const back = member("b", [report(FE1, [BE1], { state: "idle" })]);
    expect(
      p.step({ now: 1, members: [self, back, member("c", [])], roots: [], local: [local(BE1, "draining")] })
        .actions,
    ).toEqual([]);
    // and once that is gone too, the hash retires
    const done = member("b", []);
    expect(
      p.step({ now: 2, members: [self, done, member("c", [])], roots: [], local: [local(BE1, "draining")] })
        .actions,
    ).toEqual([{ kind: "retire", hash: BE1, reason: "quiet on every member for 0 ms" }]);
  });
});

describe("retirement planner: activations and rollbacks", () => {
  const FE3 = "f3".padEnd(32, "0"); // a new frontend built against the old backend BE1
  const draining = (hash: string) => report(hash, [], { state: "draining" });

  test("a dependent being activated on another member (fetching, references read) keeps its dependency", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const members = [member("a", [draining(BE1)]), member("b", [report(FE3, [BE1], { state: "fetching" })])];
    const r = p.step({ now: 0, members, roots: [], local: [local(BE1, "draining")] });
    expect(r.actions).toEqual([]);
    expect(r.verdicts.get(BE1)?.reason).toContain(`dependent ${FE3} is fetching on b`);
  });

  test("an activation here that has not read its references yet keeps every retirement here", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const step = (now: number, unresolved: string[]) =>
      p.step({
        now,
        members: [member("a", [draining(BE1)])],
        roots: [],
        local: [local(BE1, "draining")],
        unresolved,
      });
    const held = step(0, [FE3]);
    expect(held.actions).toEqual([]);
    expect(held.verdicts.get(BE1)?.reason).toContain(
      `activation of ${FE3} here has not read its references yet`,
    );
    expect(step(1, []).actions.map((a) => a.kind)).toEqual(["retire"]);
  });

  test("a hash brought back and unwanted again waits a whole quiet period from its new drain", () => {
    const p = new RetirementPlanner({ quietMs: 1000 });
    const step = (now: number, state: LocalHash["state"]) =>
      p
        .step({
          now,
          members: [member("a", [report(BE1, [], { state })])],
          roots: [],
          local: [local(BE1, state)],
        })
        .actions.map((a) => a.kind);
    expect(step(0, "ready")).toEqual(["drain"]);
    expect(step(900, "draining")).toEqual([]);
    // activated again (undrained), then drained again: the quiet period starts over
    expect(step(950, "ready")).toEqual(["drain"]);
    expect(step(1000, "draining")).toEqual([]);
    expect(step(1949, "draining")).toEqual([]);
    expect(step(1950, "draining")).toEqual(["retire"]);
  });

  test("a hash activated again by hand is kept until an alias wants it, whatever other members drain", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const again: LocalHash = { ...local(BE1), everWanted: false, reactivated: true };
    const members = [member("a", [report(BE1)]), member("b", [draining(BE1)])];
    const kept = p.step({ now: 0, members, roots: [], local: [again] });
    expect(kept.actions).toEqual([]);
    expect(kept.verdicts.get(BE1)?.reason).toContain("activated again by hand: kept until an alias or pin");
    const wanted = p.step({ now: 1, members, roots: [{ hash: BE1, reason: "alias api" }], local: [again] });
    expect(wanted.actions).toEqual([{ kind: "wanted", hash: BE1, reason: "alias api" }]);
  });

  test("hashes retired here that are wanted again are revived, with what they reference (from their own rows)", () => {
    const p = new RetirementPlanner({ quietMs: 0 });
    const retired = [
      { hash: FE1, refs: [BE1] },
      { hash: BE1, refs: [] },
      { hash: FE2, refs: [BE2] },
    ];
    // nobody reports FE1 any more: its refs come from this host's retired row
    const r = p.step({
      now: 0,
      members: [member("a", [report(FE2, [BE2]), report(BE2)])],
      roots: [{ hash: FE1, reason: "alias prod" }],
      local: [local(FE2), local(BE2)],
      retired,
    });
    expect(r.actions.filter((a) => a.kind === "revive")).toEqual([
      { kind: "revive", hash: FE1, reason: "wanted again after it retired here: alias prod" },
      { kind: "revive", hash: BE1, reason: `wanted again after it retired here: referenced by ${FE1}` },
    ]);
    expect(r.verdicts.get(FE1)?.reason).toContain("activated again here");
  });
});
