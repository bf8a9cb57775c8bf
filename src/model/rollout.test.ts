import { describe, expect, test } from "bun:test";
import { HashdError } from "../lib/errors.ts";
import { bucketIndex, emptyCounts, quantileMs, type RequestCounts } from "./request-stats.ts";
import {
  count,
  describeRollout,
  electDriver,
  type Judgement,
  judge,
  ms,
  nextAction,
  P99_FLOOR_MS,
  parseDuration,
  parsePercent,
  parseSteps,
  percent,
  startGuard,
  startRollout,
} from "./rollout.ts";
import { ROLLOUT_BOUNDS, ROLLOUT_DEFAULTS, type RolloutState } from "./rollout-state.ts";

const OLD = "a1".padEnd(32, "0");
const NEW = "b1".padEnd(32, "0");
const LIMITS = { maxErrorRate: 0.01, maxP99Ratio: 1.5, minRequests: 200 };

/** `requests` requests, `errors` of them 5xx, `failures` more upstream failures; the answered ones all at `latencyMs`. */
function counts(requests: number, errors = 0, latencyMs = 10, failures = 0): RequestCounts {
  const c = emptyCounts(0);
  c.requests = requests;
  c.errors = errors;
  c.failures = failures;
  c.buckets[bucketIndex(latencyMs)] = requests - failures;
  return c;
}

const verdictOf = (canary: RequestCounts, baseline?: RequestCounts, limits = LIMITS) =>
  judge(canary, baseline, limits).verdict;

const judgement = (verdict: Judgement["verdict"], reason = "the numbers"): Judgement => ({
  verdict,
  reason,
  numbers: {
    requests: 0,
    errors: 0,
    errorRate: undefined,
    p99Ms: undefined,
    baselineRequests: 0,
    baselineErrorRate: undefined,
    baselineP99Ms: undefined,
  },
});

const PASS = judgement("pass");
const WAIT = judgement("wait", "inconclusive: 37 of 200 requests");

const rollout = (extra: Partial<RolloutState> = {}): RolloutState => ({
  ...startRollout({ from: OLD, to: NEW, now: 1_000 }),
  ...extra,
});

function expectBadRequest(f: () => unknown, message?: RegExp): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(HashdError);
  expect((caught as HashdError).code).toBe("bad_request");
  if (message) expect((caught as HashdError).message).toMatch(message);
}

describe("judge: error rate (rules 1-3)", () => {
  test("a canary far over the limit fails, with the numbers in the reason", () => {
    const j = judge(counts(1_204, 376), counts(1_000, 1), LIMITS);
    expect(j.verdict).toBe("fail");
    expect(j.reason).toBe("error rate 31.2% over 1,204 requests vs 0.1% baseline, limit 1%");
    expect(j.numbers).toMatchObject({ requests: 1_204, errors: 376, baselineRequests: 1_000 });
    expect(j.numbers.baselineErrorRate).toBeCloseTo(0.001);
  });

  test("exactly at the limit passes, one error more fails", () => {
    expect(verdictOf(counts(200, 2))).toBe("pass");
    expect(verdictOf(counts(200, 3))).toBe("fail");
    expect(verdictOf(counts(1_000, 10), counts(1_000, 0))).toBe("pass");
    expect(verdictOf(counts(1_000, 11), counts(1_000, 0))).toBe("fail");
  });

  test("the limit is over the baseline's rate: a shared outage does not fail the canary, being worse by more than the limit does", () => {
    const baseline = counts(1_000, 50); // 5%
    expect(verdictOf(counts(1_000, 59), baseline)).toBe("pass"); // 5.9%
    expect(verdictOf(counts(1_000, 60), baseline)).toBe("pass"); // 6%: exactly 5% + 1%
    const j = judge(counts(1_000, 61), baseline, LIMITS);
    expect(j.verdict).toBe("fail");
    expect(j.reason).toBe("error rate 6.1% over 1,000 requests vs 5% baseline, limit 1%");
  });

  test("a baseline with fewer than minRequests requests does not excuse errors (rule 1)", () => {
    const tiny = counts(10, 5); // 50%, but 10 requests
    const j = judge(counts(200, 20), tiny, LIMITS);
    expect(j.verdict).toBe("fail");
    expect(j.reason).toBe("error rate 10% over 200 requests vs no baseline, limit 1%");
    expect(j.numbers.baselineErrorRate).toBeUndefined();
  });

  test("upstream failures count as errors", () => {
    expect(verdictOf(counts(200, 0, 10, 3))).toBe("fail");
    expect(verdictOf(counts(200, 1, 10, 1))).toBe("pass");
    expect(judge(counts(200, 1, 10, 2), undefined, LIMITS).numbers.errors).toBe(3);
  });

  test("early fail: before minRequests, only once more errors than minRequests may have (rule 3)", () => {
    // limit 1% of 200 = 2 errors allowed
    expect(verdictOf(counts(10, 2))).toBe("wait");
    const j = judge(counts(10, 3), counts(1_000, 1), LIMITS);
    expect(j.verdict).toBe("fail");
    expect(j.reason).toBe(
      "error rate 30% over 10 requests vs 0.1% baseline, limit 1%: 3 errors, more than 200 requests may have",
    );
    // the baseline's rate widens the allowance: 1.5% of 200 = 3
    expect(verdictOf(counts(10, 3), counts(1_000, 5))).toBe("wait");
    expect(verdictOf(counts(10, 4), counts(1_000, 5))).toBe("fail");
    // a 30% canary is aborted within its first seconds, not after 200 requests
    expect(verdictOf(counts(12, 4))).toBe("fail");
  });

  test("a limit of 0% fails the first error", () => {
    const zero = { ...LIMITS, maxErrorRate: 0 };
    expect(verdictOf(counts(1, 1), undefined, zero)).toBe("fail");
    expect(verdictOf(counts(199, 0), undefined, zero)).toBe("wait");
    expect(verdictOf(counts(200, 0), undefined, zero)).toBe("pass");
  });
});

describe("judge: inconclusive never passes (rule 5)", () => {
  test("fewer than minRequests requests wait, however clean; minRequests pass", () => {
    const j = judge(counts(37), counts(1_000), LIMITS);
    expect(j).toMatchObject({ verdict: "wait", reason: "inconclusive: 37 of 200 requests" });
    expect(verdictOf(counts(199))).toBe("wait");
    expect(verdictOf(counts(200))).toBe("pass");
    expect(judge(emptyCounts(0), undefined, LIMITS)).toMatchObject({
      verdict: "wait",
      reason: "inconclusive: 0 of 200 requests",
    });
    expect(judge(emptyCounts(0), undefined, LIMITS).numbers.errorRate).toBeUndefined();
  });

  test("a slow canary below minRequests waits: p99 is not judged on few requests", () => {
    expect(verdictOf(counts(150, 0, 2_000), counts(1_000, 0, 10))).toBe("wait");
  });

  test("a pass says its numbers", () => {
    const j = judge(counts(1_000, 5, 80), counts(1_000, 1, 80), LIMITS);
    expect(j.verdict).toBe("pass");
    expect(j.reason).toMatch(
      /^error rate 0\.5% over 1,000 requests vs 0\.1% baseline, limit 1%; p99 \d+ ms vs \d+ ms baseline \(1x\)$/,
    );
  });
});

describe("judge: p99 (rule 4)", () => {
  test("a canary slower than maxP99Ratio times the baseline fails, with the numbers", () => {
    const canary = counts(1_204, 0, 412);
    const baseline = counts(5_000, 0, 80);
    const j = judge(canary, baseline, LIMITS);
    expect(j.verdict).toBe("fail");
    const p99 = quantileMs(canary, 0.99) as number;
    const base = quantileMs(baseline, 0.99) as number;
    expect(j.numbers.p99Ms).toBe(p99);
    expect(j.numbers.baselineP99Ms).toBe(base);
    expect(j.reason).toBe(
      `p99 ${Math.round(p99)} ms vs ${Math.round(base)} ms baseline (${Number((p99 / base).toFixed(1))}x, limit 1.5x) over 1,204 requests`,
    );
  });

  test("within the ratio passes; just over it fails", () => {
    // 80 ms and 100 ms: neighbouring buckets, under 1.5x
    expect(verdictOf(counts(1_000, 0, 100), counts(1_000, 0, 80))).toBe("pass");
    const loose = { ...LIMITS, maxP99Ratio: 3 };
    expect(verdictOf(counts(1_000, 0, 200), counts(1_000, 0, 80), loose)).toBe("pass");
    expect(verdictOf(counts(1_000, 0, 200), counts(1_000, 0, 80))).toBe("fail");
  });

  test(`a difference of at most ${P99_FLOOR_MS} ms never fails, whatever the ratio`, () => {
    const j = judge(counts(1_000, 0, 0.6), counts(1_000, 0, 0.3), LIMITS);
    expect((j.numbers.p99Ms as number) / (j.numbers.baselineP99Ms as number)).toBeGreaterThan(1.5);
    expect(j.verdict).toBe("pass");
    // 2 ms vs 4 ms: twice as slow, 2 ms apart
    expect(verdictOf(counts(1_000, 0, 4), counts(1_000, 0, 2))).toBe("pass");
    // 2 ms vs 10 ms: over the floor
    expect(verdictOf(counts(1_000, 0, 10), counts(1_000, 0, 2))).toBe("fail");
  });

  test("not judged without a baseline of minRequests: pass on the error rate, and the reason says so", () => {
    const j = judge(counts(1_000, 0, 2_000), counts(150, 0, 10), LIMITS);
    expect(j.verdict).toBe("pass");
    expect(j.reason).toBe(
      "error rate 0% over 1,000 requests vs no baseline, limit 1%; p99 not judged (baseline 150 of 200 requests)",
    );
    expect(j.numbers.baselineP99Ms).toBeUndefined();
    expect(verdictOf(counts(1_000, 0, 2_000), undefined)).toBe("pass");
  });

  test("the error rule is told first when both fail", () => {
    const j = judge(counts(1_000, 100, 2_000), counts(1_000, 0, 10), LIMITS);
    expect(j.reason).toStartWith("error rate 10% over 1,000 requests");
  });

  test("a canary whose answered requests all fail upstream has no p99 and still fails on errors", () => {
    const j = judge(counts(300, 0, 10, 300), counts(1_000), LIMITS);
    expect(j.verdict).toBe("fail");
    expect(j.numbers.p99Ms).toBeUndefined();
  });
});

describe("nextAction", () => {
  test("a pass before the step time waits; at the step time the next step, exactly one further", () => {
    const s = rollout();
    expect(nextAction(s, 1_000 + 59_999, PASS)).toEqual({ kind: "wait" });
    const a = nextAction(s, 1_000 + 60_000, PASS);
    expect(a.kind).toBe("advance");
    if (a.kind !== "advance") return;
    expect(a.state).toEqual({
      ...s,
      step: 1,
      stepSince: 61_000,
      note: "step 2 (25%) after step 1 passed: the numbers",
    });
  });

  test("inconclusive after the step time waits (never a pass)", () => {
    expect(nextAction(rollout(), 10_000_000, WAIT)).toEqual({ kind: "wait" });
  });

  test("a fail aborts at once, before the step time, with the note naming the step (from 1) and the numbers", () => {
    const s = rollout({ step: 1, stepSince: 50_000 });
    const reason = "error rate 31.2% over 1,204 requests vs 0.1% baseline, limit 1%";
    const a = nextAction(s, 50_001, judgement("fail", reason));
    expect(a).toEqual({
      kind: "abort",
      state: { ...s, status: "aborted", note: `aborted at step 2 (25%): ${reason}` },
    });
  });

  test("the last step's pass finishes: status done, the step unchanged", () => {
    const s = rollout({ step: 3, stepSince: 0 });
    const a = nextAction(s, 60_000, PASS);
    expect(a).toEqual({
      kind: "finish",
      state: { ...s, status: "done", note: "done: step 4 (100%) passed: the numbers" },
    });
  });

  test("never skips a step: passes walk 5, 25, 50, 100, then done", () => {
    let s = rollout();
    let now = 1_000;
    const weights = [s.steps[s.step]];
    for (;;) {
      now += 60_000;
      // a judgement a long time after the step time still moves one step
      const a = nextAction(s, now + 1_000_000, PASS);
      if (a.kind === "wait") throw new Error("stuck");
      s = a.state;
      if (a.kind === "finish") break;
      expect(a.kind).toBe("advance");
      weights.push(s.steps[s.step]);
      now += 1_000_000;
    }
    expect(weights).toEqual([5, 25, 50, 100]);
    expect(s.status).toBe("done");
  });

  test("a paused, aborted or done rollout never moves, whatever the judgement", () => {
    for (const status of ["paused", "aborted", "done"] as const) {
      const s = rollout({ status, stepSince: 0 });
      for (const j of [PASS, WAIT, judgement("fail")])
        expect(nextAction(s, 1e12, j)).toEqual({ kind: "wait" });
    }
  });

  test("a guard: passes after its watch time, else switches back, with its own notes", () => {
    const g = startGuard({ from: OLD, to: NEW, now: 0 });
    expect(nextAction(g, 59_999, PASS)).toEqual({ kind: "wait" });
    expect(nextAction(g, 60_000, PASS)).toEqual({
      kind: "finish",
      state: { ...g, status: "done", note: "guard passed after 60 s: the numbers" },
    });
    expect(nextAction(g, 5_000, judgement("fail", "p99 too slow"))).toEqual({
      kind: "abort",
      state: { ...g, status: "aborted", note: `guard aborted, back to ${OLD.slice(0, 8)}: p99 too slow` },
    });
  });

  test("notes are clipped to the bound", () => {
    const a = nextAction(rollout(), 1_000, judgement("fail", "x".repeat(1_000)));
    if (a.kind !== "abort") throw new Error("not aborted");
    expect(a.state.note.length).toBe(ROLLOUT_BOUNDS.noteChars);
  });
});

describe("electDriver", () => {
  test("the alive member with the lowest name, with a strict majority of the known members", () => {
    expect(electDriver(["c", "a", "b"], 3)).toBe("a");
    expect(electDriver(["c", "b"], 3)).toBe("b");
    expect(electDriver(["host-10", "host-9"], 3)).toBe("host-10"); // by code unit, not number
    expect(electDriver(["a"], 1)).toBe("a"); // a cluster of one
  });

  test("no majority, no driver: an isolated host, half of a split cluster", () => {
    expect(electDriver(["a"], 2)).toBeUndefined();
    expect(electDriver(["a", "b"], 4)).toBeUndefined();
    expect(electDriver(["c", "d"], 4)).toBeUndefined();
    expect(electDriver(["a", "b"], 5)).toBeUndefined();
    expect(electDriver([], 0)).toBeUndefined();
  });

  test("the alive members are known members: a smaller known count does not lower the bar", () => {
    expect(electDriver(["a", "b"], 1)).toBe("a");
  });
});

describe("flags", () => {
  test("parseSteps", () => {
    expect(parseSteps("5,25,50,100")).toEqual([5, 25, 50, 100]);
    expect(parseSteps(" 10% , 100% ")).toEqual([10, 100]);
    expect(parseSteps("100")).toEqual([100]);
    expectBadRequest(() => parseSteps(""), /not a percentage/);
    expectBadRequest(() => parseSteps("0,100"), /not a percentage/);
    expectBadRequest(() => parseSteps("5,5,100"), /ascend/);
    expectBadRequest(() => parseSteps("25,5,100"), /ascend/);
    expectBadRequest(() => parseSteps("5,50"), /last step must be 100/);
    expectBadRequest(() => parseSteps("5,abc,100"), /"abc"/);
    expectBadRequest(() => parseSteps("5.5,100"), /not a percentage/);
    expectBadRequest(() => parseSteps("1,2,3,4,5,6,7,8,9,10,100"), /at most 10/);
  });

  test("parseDuration", () => {
    expect(parseDuration("60s")).toBe(60_000);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("1.5s")).toBe(1_500);
    expect(parseDuration("1h")).toBe(3_600_000);
    for (const bad of ["60", "1d", "-1s", "", "s", "1 minute"])
      expectBadRequest(() => parseDuration(bad, "--step-time"), /^--step-time: /);
  });

  test("parsePercent", () => {
    expect(parsePercent("1%")).toBe(0.01);
    expect(parsePercent("0.5%")).toBe(0.005);
    expect(parsePercent("0%")).toBe(0);
    expect(parsePercent("100%")).toBe(1);
    for (const bad of ["1", "0.01", "101%", "-1%", "%", ""])
      expectBadRequest(() => parsePercent(bad, "--max-error-rate"), /^--max-error-rate: /);
  });
});

describe("startRollout and startGuard", () => {
  test("defaults", () => {
    const s = startRollout({ from: OLD, to: NEW, now: 7 });
    expect(s).toEqual({
      kind: "rollout",
      from: OLD,
      to: NEW,
      steps: [5, 25, 50, 100],
      step: 0,
      stepSince: 7,
      stepTimeMs: 60_000,
      intervalMs: 5_000,
      limits: { maxErrorRate: 0.01, maxP99Ratio: 1.5, minRequests: 200 },
      status: "running",
      note: "step 1 (5%) started",
      startedAt: 7,
    });
    expect(s.steps).not.toBe(ROLLOUT_DEFAULTS.steps as unknown as number[]);
  });

  test("what is given overrides, what is left undefined keeps the default", () => {
    const s = startRollout({
      from: OLD,
      to: NEW,
      now: 0,
      steps: [10, 100],
      stepTimeMs: 30_000,
      limits: { maxP99Ratio: 2, minRequests: undefined },
    });
    expect(s.steps).toEqual([10, 100]);
    expect(s.stepTimeMs).toBe(30_000);
    expect(s.limits).toEqual({ maxErrorRate: 0.01, maxP99Ratio: 2, minRequests: 200 });
  });

  test("refused with bad_request: same hash, a step time out of bounds, a bad hash, a ratio below 1", () => {
    expectBadRequest(() => startRollout({ from: OLD, to: OLD, now: 0 }), /canary is its baseline/);
    expectBadRequest(() => startRollout({ from: OLD, to: NEW, now: 0, stepTimeMs: 500 }), /step time/);
    expectBadRequest(() => startRollout({ from: "nope", to: NEW, now: 0 }), /store hashes/);
    expectBadRequest(() => startRollout({ from: OLD, to: NEW, now: 0, limits: { maxP99Ratio: 0.5 } }), /p99/);
    expectBadRequest(() => startGuard({ from: OLD, to: NEW, now: 0, watchMs: 100 }), /step time/);
  });

  test("a guard: steps [100], the watch time as its step time", () => {
    const g = startGuard({ from: OLD, to: NEW, now: 3 });
    expect(g).toMatchObject({ kind: "guard", steps: [100], step: 0, stepTimeMs: 60_000, status: "running" });
    expect(g.note).toBe(`guard: watching ${NEW.slice(0, 8)} for 60 s`);
    expect(startGuard({ from: OLD, to: NEW, now: 3, watchMs: 300_000 }).stepTimeMs).toBe(300_000);
  });
});

describe("describeRollout and number text", () => {
  test("one line per state", () => {
    const s = rollout({ step: 1, stepSince: 0, note: "step 2 (25%) after step 1 passed: ok" });
    expect(describeRollout(s, 12_000)).toBe(
      `rollout ${OLD.slice(0, 8)} → ${NEW.slice(0, 8)} running, step 2 of 4 (25%) for 12 s of 60 s: step 2 (25%) after step 1 passed: ok`,
    );
    expect(describeRollout({ ...s, status: "paused" }, 12_000)).toBe(
      `rollout ${OLD.slice(0, 8)} → ${NEW.slice(0, 8)} paused, step 2 of 4 (25%): step 2 (25%) after step 1 passed: ok`,
    );
    expect(describeRollout({ ...s, status: "aborted", note: "aborted at step 2 (25%): bad" })).toBe(
      `rollout ${OLD.slice(0, 8)} → ${NEW.slice(0, 8)} aborted: aborted at step 2 (25%): bad`,
    );
    const g = startGuard({ from: OLD, to: NEW, now: 0 });
    expect(describeRollout(g, 5_000)).toBe(
      `guard ${OLD.slice(0, 8)} → ${NEW.slice(0, 8)} running, watching for 5 s of 60 s: ${g.note}`,
    );
  });

  test("percent, count, ms", () => {
    expect(percent(0.312)).toBe("31.2%");
    expect(percent(0.01)).toBe("1%");
    expect(percent(0.001)).toBe("0.1%");
    expect(percent(0.00012)).toBe("0.012%");
    expect(percent(0)).toBe("0%");
    expect(count(1_204)).toBe("1,204");
    expect(ms(412.4)).toBe("412 ms");
    expect(ms(2.34)).toBe("2.3 ms");
    expect(ms(0.314)).toBe("0.31 ms");
  });
});
