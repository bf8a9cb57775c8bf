import { describe, expect, test } from "bun:test";
import { Awareness, clampScore, scaleByHealth } from "./awareness.ts";
import { pushPullScale, retransmitLimit, suspicionTimeout } from "./scaling.ts";
import { remainingSuspicionTime, Suspicion } from "./suspicion.ts";

describe("remainingSuspicionTime (memberlist suspicion_test.go table)", () => {
  // [n, k, elapsed, min, max, expected], all in ms
  const cases: [number, number, number, number, number, number][] = [
    [0, 3, 0, 2000, 30_000, 30_000],
    [1, 3, 2000, 2000, 30_000, 14_000],
    [2, 3, 3000, 2000, 30_000, 4810],
    [3, 3, 4000, 2000, 30_000, -2000],
    [4, 3, 5000, 2000, 30_000, -3000],
    [5, 3, 10_000, 2000, 30_000, -8000],
    // no confirmations expected (small cluster): the minimum at once
    [0, 0, 0, 2000, 30_000, 2000],
    [0, 0, 500, 2000, 30_000, 1500],
  ];
  test.each(cases)("n=%d k=%d elapsed=%d min=%d max=%d -> %d", (n, k, elapsed, min, max, expected) => {
    expect(remainingSuspicionTime(n, k, elapsed, min, max)).toBe(expected);
  });
});

describe("Suspicion confirmations (memberlist TestSuspicion_Timer, k=3 min=500 max=2000)", () => {
  // [confirmers in order, expected "new information" answers, expected deadline offset]
  const cases: [string[], boolean[], number][] = [
    [[], [], 2000],
    [["me", "foo"], [false, true], 1250],
    [["me", "foo", "foo", "foo"], [false, true, false, false], 1250],
    // memberlist's timer test says 810 within a 25 ms fudge; the formula gives 811.28 -> 811
    [["me", "foo", "bar"], [false, true, true], 811],
    [["me", "foo", "bar", "baz"], [false, true, true, true], 500],
    [["me", "foo", "bar", "baz", "zoo"], [false, true, true, true, false], 500],
  ];
  test.each(cases)("confirmed by %p", (confirmers, fresh, deadline) => {
    const s = new Suspicion(7, "me", 3, 500, 2000, 10_000, 1);
    expect(confirmers.map((c) => s.confirm(c))).toEqual(fresh);
    expect(s.deadline() - 10_000).toBe(deadline);
    expect(s.confirmationCount).toBe(fresh.filter(Boolean).length);
  });
});

describe("suspicionTimeout (memberlist util_test.go TestSuspicionTimeout)", () => {
  const cases: [number, number][] = [
    [5, 1000],
    [10, 1000],
    [50, 1698],
    [100, 2000],
    [500, 2698],
    [1000, 3000],
  ];
  test.each(cases)("n=%d", (n, expected) => {
    expect(suspicionTimeout(3, n, 1000) / 3).toBe(expected);
  });
  test("LAN defaults at 1,000 members: 12 s minimum, 72 s maximum", () => {
    expect(suspicionTimeout(4, 1000, 1000)).toBe(12_000);
    expect(6 * suspicionTimeout(4, 1000, 1000)).toBe(72_000);
  });
});

describe("retransmitLimit (memberlist TestRetransmitLimit)", () => {
  const cases: [number, number, number][] = [
    [3, 0, 0],
    [3, 1, 3],
    [3, 99, 6],
    [4, 9, 4],
    [4, 10, 8],
    [4, 100, 12],
    [4, 1000, 16],
  ];
  test.each(cases)("mult=%d n=%d -> %d", (mult, n, expected) => {
    expect(retransmitLimit(mult, n)).toBe(expected);
  });
});

describe("pushPullScale (memberlist TestPushPullScale)", () => {
  test("unscaled up to 32 members, then +1x per doubling", () => {
    for (let n = 0; n <= 32; n++) expect(pushPullScale(1000, n)).toBe(1000);
    for (let n = 33; n <= 64; n++) expect(pushPullScale(1000, n)).toBe(2000);
    for (let n = 65; n <= 128; n++) expect(pushPullScale(1000, n)).toBe(3000);
    expect(pushPullScale(30_000, 1000)).toBe(180_000);
  });
});

describe("Awareness (memberlist awareness_test.go)", () => {
  // [delta, score after, scaled 1 s timeout]
  const steps: [number, number, number][] = [
    [0, 0, 1000],
    [-1, 0, 1000],
    [-10, 0, 1000],
    [1, 1, 2000],
    [-1, 0, 1000],
    [10, 7, 8000],
    [-1, 6, 7000],
    [-1, 5, 6000],
    [-1, 4, 5000],
    [-1, 3, 4000],
    [-1, 2, 3000],
    [-1, 1, 2000],
    [-1, 0, 1000],
    [-1, 0, 1000],
  ];
  test("score is clamped to [0, max-1] and scales timeouts by score+1", () => {
    const a = new Awareness(8);
    for (const [delta, score, timeout] of steps) {
      a.applyDelta(delta);
      expect(a.score).toBe(score);
      expect(a.scale(1000)).toBe(timeout);
    }
  });
  test("pure helpers", () => {
    expect(clampScore(-3, 8)).toBe(0);
    expect(clampScore(99, 8)).toBe(7);
    expect(scaleByHealth(500, 3)).toBe(2000);
    expect(() => new Awareness(0)).toThrow(RangeError);
  });
});
