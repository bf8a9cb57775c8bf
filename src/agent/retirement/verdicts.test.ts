import { describe, expect, test } from "bun:test";
import {
  DecisionReasons,
  decisionOf,
  describeVerdict,
  sameVerdict,
  type VerdictCause,
  verdictOf,
} from "./verdicts.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";

/** Every kind with the text it had when the planner wrote strings (the events users have). */
const TEXTS: [VerdictCause, string][] = [
  [{ kind: "wanted", because: "alias prod" }, "wanted: alias prod"],
  [{ kind: "revived", because: "alias prod" }, "wanted again: alias prod; activated again here"],
  [
    { kind: "reactivated" },
    "activated again by hand: kept until an alias or pin wants it again, or deactivated",
  ],
  [
    { kind: "wanted-once", evidence: { kind: "reported", member: "b", state: "draining" } },
    "never aliased or pinned here, but draining on b, so wanted once there",
  ],
  [
    { kind: "wanted-once", evidence: { kind: "reported", member: "b", state: "retired" } },
    "never aliased or pinned here, but retired on b, so wanted once there",
  ],
  [
    { kind: "wanted-once", evidence: { kind: "former-target", because: "alias prod" } },
    "never aliased or pinned here, but alias prod, deployed here before the alias moved on",
  ],
  [{ kind: "never-wanted" }, "never aliased or pinned: kept until deactivated"],
  [{ kind: "kept-by-policy" }, "unwanted, kept scaled to zero by retention policy"],
  [
    { kind: "blocked", blocker: { kind: "no-majority", visible: 1, known: 3 } },
    "draining, kept: sees 1 of 3 members, not a majority (partition?)",
  ],
  [
    { kind: "blocked", blocker: { kind: "unreported", member: "b", status: "suspect" } },
    "draining, kept: no report from b (suspect) yet (it just joined or restarted)",
  ],
  [
    { kind: "blocked", blocker: { kind: "busy", member: "b", status: "alive", inFlight: 2, holds: 1 } },
    "draining, kept: 2 in flight and 1 hold(s) on b",
  ],
  [
    {
      kind: "blocked",
      blocker: { kind: "dependent", member: "c", status: "dead", dependent: H, state: "ready" },
    },
    `draining, kept: dependent ${H} is ready on c (dead)`,
  ],
  [
    { kind: "blocked", blocker: { kind: "unresolved", activation: H } },
    `draining, kept: activation of ${H} here has not read its references yet`,
  ],
  [{ kind: "quiet", quietForMs: 250, quietMs: 10_000 }, "draining, quiet for 250 ms of 10000"],
  [{ kind: "retiring" }, "retired: unwanted, unreferenced and idle everywhere"],
];

describe("planner verdicts", () => {
  test("each kind is described as the planner's text always was", () => {
    for (const [cause, text] of TEXTS) expect(describeVerdict(cause)).toBe(text);
    expect(
      TEXTS.map(([c]) => verdictOf(c))
        .filter((v) => v.wanted)
        .map((v) => v.cause.kind),
    ).toEqual(["wanted", "revived"]);
  });

  test("verdicts record the same decision by kind and deciding hashes or members, never by counts or times", () => {
    const key = new Map(TEXTS.map(([c]) => [c, decisionOf(c)]));
    // every kind of the table is its own decision, but busy and quiet: both wait for work to end
    const distinct = new Set(key.values());
    expect(distinct.size).toBe(TEXTS.length - 1);
    const busy = (
      member: string,
      inFlight: number,
      holds = 0,
      status: "alive" | "suspect" = "alive",
    ): VerdictCause => ({
      kind: "blocked",
      blocker: { kind: "busy", member, status, inFlight, holds },
    });
    const quiet = (quietForMs: number, quietMs = 10_000): VerdictCause => ({
      kind: "quiet",
      quietForMs,
      quietMs,
    });
    expect(sameVerdict(busy("b", 2), busy("b", 3, 4))).toBe(true);
    expect(sameVerdict(busy("b", 2), busy("c", 1, 0, "suspect"))).toBe(true);
    expect(sameVerdict(busy("b", 2), quiet(1))).toBe(true);
    expect(sameVerdict(quiet(1), quiet(9_000, 5_000))).toBe(true);
    const noMajority = (visible: number, known: number): VerdictCause => ({
      kind: "blocked",
      blocker: { kind: "no-majority", visible, known },
    });
    expect(sameVerdict(noMajority(1, 3), noMajority(2, 5))).toBe(true);
    const dependent = (dep: string, member: string, state: "ready" | "idle" | "draining"): VerdictCause => ({
      kind: "blocked",
      blocker: { kind: "dependent", member, status: "alive", dependent: dep, state },
    });
    expect(sameVerdict(dependent(H, "b", "ready"), dependent(H, "c", "idle"))).toBe(true);
    expect(sameVerdict(dependent(H, "b", "ready"), dependent(H, "b", "draining"))).toBe(false);
    expect(sameVerdict(dependent(H, "b", "ready"), dependent(H.replace("0", "1"), "b", "ready"))).toBe(false);
    expect(sameVerdict(dependent(H, "b", "ready"), busy("b", 1))).toBe(false);
    const wanted = (because: string): VerdictCause => ({ kind: "wanted", because });
    expect(
      sameVerdict(
        wanted("sticky clients until 12:00:00 UTC (b)"),
        wanted("sticky clients until 12:00:09 UTC (c)"),
      ),
    ).toBe(true);
    // the text keeps the numbers for display
    expect(verdictOf(busy("b", 3, 1)).reason).toBe("draining, kept: 3 in flight and 1 hold(s) on b");
  });
});

describe("DecisionReasons: the report's reason changes with the decision, not with its numbers", () => {
  test("numbers that move keep the first text; a new decision takes its own; a hash without a verdict is dropped", () => {
    const reasons = new DecisionReasons();
    const quiet = (ms: number) => verdictOf({ kind: "quiet", quietForMs: ms, quietMs: 10_000 });
    const first = reasons.reasonOf("h", quiet(1_000));
    expect(first).toBe(quiet(1_000).reason);
    expect(reasons.reasonOf("h", quiet(7_000))).toBe(first);
    const busy = verdictOf({
      kind: "blocked",
      blocker: { kind: "unreported", member: "b", status: "suspect" },
    });
    expect(reasons.reasonOf("h", busy)).toBe(busy.reason);
    expect(reasons.reasonOf("h", undefined)).toBeUndefined();
    expect(reasons.reasonOf("h", quiet(9_000))).toBe(quiet(9_000).reason);
    reasons.prune(new Map());
    expect(reasons.reasonOf("h", quiet(2_000))).toBe(quiet(2_000).reason);
  });
});
