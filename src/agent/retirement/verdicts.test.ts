import { describe, expect, test } from "bun:test";
import { describeVerdict, sameVerdict, type VerdictCause, verdictOf } from "./verdicts.ts";

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

  test("verdicts are the same by kind and facts; only the time spent quiet may differ", () => {
    for (const [a] of TEXTS)
      for (const [b] of TEXTS) expect({ a, b, same: sameVerdict(a, b) }).toEqual({ a, b, same: a === b });
    const quiet = (quietForMs: number, quietMs = 10_000): VerdictCause => ({
      kind: "quiet",
      quietForMs,
      quietMs,
    });
    expect(sameVerdict(quiet(1), quiet(9_000))).toBe(true);
    expect(sameVerdict(quiet(1), quiet(1, 5_000))).toBe(false);
    const busy = (inFlight: number): VerdictCause => ({
      kind: "blocked",
      blocker: { kind: "busy", member: "b", status: "alive", inFlight, holds: 0 },
    });
    expect(sameVerdict(busy(2), busy(2))).toBe(true);
    expect(sameVerdict(busy(2), busy(3))).toBe(false);
  });
});
