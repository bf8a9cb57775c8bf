import { describe, expect, test } from "bun:test";
import { randomFloat, Xoshiro128 } from "../lib/prng.ts";
import {
  addCounts,
  BUCKETS,
  bucketIndex,
  countsDelta,
  decodeCounts,
  emptyCounts,
  encodeCounts,
  errorRate,
  INF_BUCKET,
  LATENCY_BOUNDS_MS,
  quantileMs,
  type RequestCounts,
  sumCounts,
} from "./request-stats.ts";

/** the definition, by a loop over the bounds */
function slowIndex(ms: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (ms <= (LATENCY_BOUNDS_MS[i] as number)) return i;
  return INF_BUCKET;
}

function counts(partial: Partial<RequestCounts> & { at?: Record<number, number> }): RequestCounts {
  const c = emptyCounts(partial.since ?? 1000);
  for (const [i, n] of Object.entries(partial.at ?? {})) c.buckets[Number(i)] = n;
  const observed = c.buckets.reduce((a, b) => a + b, 0);
  return {
    ...c,
    requests: partial.requests ?? observed + (partial.failures ?? 0),
    errors: partial.errors ?? 0,
    failures: partial.failures ?? 0,
  };
}

describe("bounds", () => {
  test("39 bounds from 0.25 ms by sqrt(2), then +Inf", () => {
    expect(LATENCY_BOUNDS_MS.length).toBe(39);
    expect(BUCKETS).toBe(40);
    expect(LATENCY_BOUNDS_MS[0]).toBe(0.25);
    expect(LATENCY_BOUNDS_MS[2]).toBeCloseTo(0.5, 12);
    expect(LATENCY_BOUNDS_MS[38]).toBeCloseTo(131072, 6);
    expect(emptyCounts(5)).toEqual({
      since: 5,
      requests: 0,
      errors: 0,
      failures: 0,
      buckets: Array(40).fill(0),
    });
  });
});

describe("bucketIndex", () => {
  test("agrees with the loop on every bound, next to it, and on random latencies", () => {
    const values: number[] = [0, -1, 0.1, 0.25, 1e-9, 1e9, Number.POSITIVE_INFINITY];
    for (const b of LATENCY_BOUNDS_MS) values.push(b, b * (1 + 1e-15), b * (1 - 1e-15), b + 1e-9, b - 1e-9);
    const rng = new Xoshiro128(7);
    for (let i = 0; i < 100_000; i++) values.push(2 ** (randomFloat(rng) * 22 - 4));
    for (const ms of values) expect([ms, bucketIndex(ms)]).toEqual([ms, slowIndex(ms)]);
  });

  test("NaN and negative latencies count as the fastest", () => {
    expect(bucketIndex(Number.NaN)).toBe(0);
    expect(bucketIndex(-5)).toBe(0);
  });
});

describe("quantileMs", () => {
  test("undefined without latencies", () => {
    expect(quantileMs(emptyCounts(0), 0.5)).toBeUndefined();
    expect(quantileMs(counts({ failures: 3 }), 0.99)).toBeUndefined();
  });

  test("interpolates linearly inside the bucket, as histogram_quantile", () => {
    // 100 requests in (0.5, 0.7071] ms: the median is halfway
    const c = counts({ at: { 3: 100 } });
    const lo = LATENCY_BOUNDS_MS[2] as number;
    const hi = LATENCY_BOUNDS_MS[3] as number;
    expect(quantileMs(c, 0.5)).toBeCloseTo(lo + (hi - lo) * 0.5, 12);
    expect(quantileMs(c, 1)).toBeCloseTo(hi, 12);
    // first bucket: from 0
    expect(quantileMs(counts({ at: { 0: 4 } }), 0.25)).toBeCloseTo(0.0625, 12);
  });

  test("p50 and p99 of a two-bucket mix", () => {
    const c = counts({ at: { 10: 98, 20: 2 } });
    expect(quantileMs(c, 0.5) as number).toBeGreaterThan(LATENCY_BOUNDS_MS[9] as number);
    expect(quantileMs(c, 0.5) as number).toBeLessThanOrEqual(LATENCY_BOUNDS_MS[10] as number);
    expect(quantileMs(c, 0.99) as number).toBeGreaterThan(LATENCY_BOUNDS_MS[19] as number);
    expect(quantileMs(c, 0.99) as number).toBeLessThanOrEqual(LATENCY_BOUNDS_MS[20] as number);
  });

  test("a rank in +Inf gives the highest finite bound", () => {
    expect(quantileMs(counts({ at: { [INF_BUCKET]: 5 } }), 0.5)).toBe(LATENCY_BOUNDS_MS[38]);
  });

  test("read from real latencies, the estimate is within one bucket (41%) of the truth", () => {
    const rng = new Xoshiro128(3);
    const c = emptyCounts(0);
    const samples: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const ms = 2 + 30 * randomFloat(rng) ** 4; // skewed: most fast, a slow tail
      samples.push(ms);
      const b = bucketIndex(ms);
      c.buckets[b] = (c.buckets[b] as number) + 1;
      c.requests++;
    }
    samples.sort((a, b) => a - b);
    for (const q of [0.5, 0.99]) {
      const truth = samples[Math.ceil(q * samples.length) - 1] as number;
      const estimate = quantileMs(c, q) as number;
      expect(estimate / truth).toBeGreaterThan(1 / Math.SQRT2);
      expect(estimate / truth).toBeLessThan(Math.SQRT2);
    }
  });
});

describe("errorRate, addCounts, sumCounts", () => {
  test("errors and failures over requests", () => {
    expect(errorRate(emptyCounts(0))).toBeUndefined();
    expect(errorRate(counts({ requests: 10, errors: 1, failures: 1 }))).toBeCloseTo(0.2, 12);
  });

  test("sums every field but since", () => {
    const a = counts({ since: 1, at: { 0: 1, 5: 2 }, errors: 1 });
    const b = counts({ since: 2, at: { 5: 3, 39: 1 }, failures: 2 });
    const s = addCounts(a, b);
    expect(s.requests).toBe(a.requests + b.requests);
    expect(s.errors).toBe(1);
    expect(s.failures).toBe(2);
    expect(s.buckets[5]).toBe(5);
    expect(s.buckets[39]).toBe(1);
    expect(s.since).toBe(1);
    expect(a.buckets[5]).toBe(2); // inputs untouched
    expect(sumCounts([a, b])).toEqual(s);
    expect(sumCounts([a])).toEqual(a);
    expect(sumCounts([])).toBeUndefined();
  });
});

describe("countsDelta", () => {
  const before = counts({ since: 100, at: { 1: 2 }, errors: 1 });
  const now = counts({ since: 100, at: { 1: 5, 7: 1 }, errors: 2, failures: 1 });

  test("the difference of two readings", () => {
    const d = countsDelta(now, before);
    expect(d.requests).toBe(now.requests - before.requests);
    expect(d.errors).toBe(1);
    expect(d.failures).toBe(1);
    expect(d.buckets[1]).toBe(3);
    expect(d.buckets[7]).toBe(1);
  });

  test("no earlier reading, another since, or a counter that went down: now itself", () => {
    expect(countsDelta(now, undefined)).toBe(now);
    expect(countsDelta(now, { ...before, since: 99 })).toBe(now);
    expect(countsDelta(before, now)).toBe(before);
  });
});

describe("wire form", () => {
  test("round trip with only the non-zero buckets, flat after the four head fields", () => {
    const c = counts({ since: 1_700_000_000_000, at: { 0: 1, 13: 40, 39: 2 }, errors: 3, failures: 4 });
    const wire = encodeCounts(c);
    expect(wire).toEqual([1_700_000_000_000, 47, 3, 4, 0, 1, 13, 40, 39, 2]);
    expect(decodeCounts(wire)).toEqual(c);
    expect(decodeCounts(JSON.parse(JSON.stringify(wire)))).toEqual(c);
    expect(decodeCounts(encodeCounts(emptyCounts(0)))).toEqual(emptyCounts(0));
  });

  const good = () => [1000, 10, 1, 1, 0, 3, 5, 4];
  const hostile: [string, unknown][] = [
    ["undefined", undefined],
    ["null", null],
    ["a number", 5],
    ["a string", "[1,2,3,4]"],
    ["an object", { since: 1, requests: 1 }],
    ["too short", [1, 2, 3]],
    ["a huge array", new Array(1e6).fill(0)],
    ["NaN since", [Number.NaN, 1, 0, 0]],
    ["Infinity requests", [1, Number.POSITIVE_INFINITY, 0, 0]],
    ["negative requests", [1, -1, 0, 0]],
    ["fractional errors", [1, 5, 0.5, 0]],
    ["a string count", [1, "5", 0, 0]],
    ["a bigint", [1, 5n, 0, 0]],
    ["unsafe integer", [1, 2 ** 60, 0, 0]],
    ["more errors and failures than requests", [1, 2, 2, 1]],
    ["a nested bucket list (the old form)", [1, 5, 0, 0, [0, 1]]],
    ["an odd pair", [1, 5, 0, 0, 1]],
    ["more pairs than buckets", [1, 1e9, 0, 0, ...Array.from({ length: 82 }, (_, i) => (i % 2 ? 1 : i / 2))]],
    ["index out of range", [1, 5, 0, 0, 40, 1]],
    ["negative index", [1, 5, 0, 0, -1, 1]],
    ["fractional index", [1, 5, 0, 0, 1.5, 1]],
    ["NaN index", [1, 5, 0, 0, Number.NaN, 1]],
    ["duplicate index", [1, 5, 0, 0, 3, 1, 3, 1]],
    ["descending indices", [1, 5, 0, 0, 4, 1, 3, 1]],
    ["zero count", [1, 5, 0, 0, 3, 0]],
    ["negative count", [1, 5, 0, 0, 3, -1]],
    ["NaN count", [1, 5, 0, 0, 3, Number.NaN]],
    ["more latencies than requests", [1, 5, 0, 0, 3, 4, 4, 2]],
    ["nested junk", [1, 5, 0, 0, [1], 1]],
  ];
  test.each(hostile)("refuses %s", (_name, value) => {
    expect(decodeCounts(value)).toBeNull();
  });

  test("a sparse array and getters do not throw", () => {
    // biome-ignore lint/suspicious/noSparseArray: hostile input
    expect(decodeCounts([1, 5, 0, 0, , 1])).toBeNull();
    const tricky = [1, 5, 0, 0];
    Object.defineProperty(tricky, 1, { get: () => 5 });
    expect(decodeCounts(tricky)).not.toBeNull();
    expect(decodeCounts(good())).not.toBeNull();
  });

  test("random mutations of a good value never throw and decode only valid counts", () => {
    const rng = new Xoshiro128(11);
    const junk = [-1, 0, 1, 39, 40, 1.5, Number.NaN, "1", null, [], 2 ** 53, 1e300];
    for (let i = 0; i < 5000; i++) {
      const v = good() as unknown[];
      const at = Math.floor(randomFloat(rng) * (v.length + 1));
      v[at] = junk[Math.floor(randomFloat(rng) * junk.length)];
      const decoded = decodeCounts(v);
      if (decoded === null) continue;
      expect(decoded.buckets.length).toBe(BUCKETS);
      expect(decoded.buckets.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(decoded.requests);
      expect(decoded.errors + decoded.failures).toBeLessThanOrEqual(decoded.requests);
    }
  });
});
