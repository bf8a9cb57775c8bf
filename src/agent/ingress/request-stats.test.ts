import { describe, expect, test } from "bun:test";
import { bucketIndex, errorRate, quantileMs } from "../../model/request-stats.ts";
import { OTHER_ALIASES, RequestStats, SLOT_MS } from "./request-stats.ts";

const A = "0123456789abcdfghijklmnpqrsvwxyz";
const B = "zyxwvsrqpnmlkjihgfdcba9876543210";

function fakeClock(start = 1_000_000) {
  const clock = { now: start, read: () => clock.now };
  return clock;
}

describe("RequestStats", () => {
  test("counts requests, errors, failures and latencies per hash, summed over aliases", () => {
    const clock = fakeClock();
    const stats = new RequestStats({ clock: clock.read });
    stats.record(A, null, 200, 1);
    stats.record(A, "www", 503, 3);
    stats.record(A, "www", "failure", 0);
    stats.record(A, "api", 404, 40);
    const c = stats.countsOf(A);
    expect(c?.since).toBe(1_000_000);
    expect(c?.requests).toBe(4);
    expect(c?.errors).toBe(1);
    expect(c?.failures).toBe(1);
    expect(c?.buckets.reduce((a, b) => a + b, 0)).toBe(3); // a failure has no latency
    expect(c?.buckets[bucketIndex(40)]).toBe(1);
    expect(errorRate(c as NonNullable<typeof c>)).toBe(0.5);
    expect(quantileMs(c as NonNullable<typeof c>, 0.5)).toBeDefined();
    expect(stats.countsOf(B)).toBeUndefined();

    const rows = [...stats.rows()].map((r) => [r.alias, r.counts.requests, r.sumMs]);
    expect(rows).toEqual([
      [null, 1, 1],
      ["www", 2, 3],
      ["api", 1, 40],
    ]);
  });

  test("bounded: hashes past the cap are dropped, aliases past the cap share one row", () => {
    const stats = new RequestStats({ maxHashes: 1, maxAliasesPerHash: 2 });
    stats.record(A, null, 200, 1);
    stats.record(B, null, 200, 1);
    expect(stats.size).toBe(1);
    expect(stats.dropped).toBe(1);
    for (const alias of ["a", "b", "c", "d"]) stats.record(A, alias, 200, 1);
    expect([...stats.rows()].map((r) => [r.alias, r.counts.requests])).toEqual([
      [null, 1],
      ["a", 1],
      ["b", 1],
      [OTHER_ALIASES, 2],
    ]);
    expect(stats.countsOf(A)?.requests).toBe(5);
  });

  test("forget: a hash counted again starts over with a new since", () => {
    const clock = fakeClock();
    const stats = new RequestStats({ clock: clock.read });
    stats.record(A, null, 200, 1);
    stats.forget(A);
    expect(stats.countsOf(A)).toBeUndefined();
    clock.now += 5000;
    stats.record(A, null, 200, 1);
    expect(stats.countsOf(A)?.since).toBe(1_005_000);
    expect(stats.countsOf(A)?.requests).toBe(1);
  });

  test("recent: counts of the last slots, from copies taken at each slot's first tick", () => {
    const clock = fakeClock(100 * SLOT_MS);
    const stats = new RequestStats({ clock: clock.read });
    stats.tick(clock.now);
    stats.record(A, null, 200, 1); // slot 100, before any copy of A: all of it in any window
    expect(stats.recent(A, 10_000)?.requests).toBe(1);
    for (let slot = 101; slot <= 110; slot++) {
      clock.now = slot * SLOT_MS + 100;
      stats.tick(clock.now);
      stats.record(A, null, slot % 2 === 0 ? 200 : 500, 2);
      stats.record(A, "www", 200, 2);
    }
    // now in slot 110: 10 s reads from the start of 110, 30 s from 108, 60 s (and more) from 105
    expect(stats.recent(A, 10_000)?.requests).toBe(2);
    expect(stats.recent(A, 1)?.requests).toBe(2);
    expect(stats.recent(A, 30_000)?.requests).toBe(6);
    expect(stats.recent(A, 30_000)?.errors).toBe(1);
    expect(stats.recent(A, 60_000)?.requests).toBe(12);
    expect(stats.recent(A, 600_000)?.requests).toBe(12);
    expect(stats.countsOf(A)?.requests).toBe(21);
    expect(stats.recent(B, 10_000)).toBeUndefined();
  });

  test("recent: a hash first counted within the window counts whole; missed ticks take the oldest copy", () => {
    const clock = fakeClock(200 * SLOT_MS);
    const stats = new RequestStats({ clock: clock.read });
    stats.tick(clock.now);
    clock.now = 203 * SLOT_MS + 500;
    stats.record(B, null, 200, 1); // first counted in slot 203, no copy yet
    clock.now = 204 * SLOT_MS + 1;
    stats.tick(clock.now); // copy at 204 holds 1
    stats.record(B, null, 200, 1);
    expect(stats.recent(B, 60_000)?.requests).toBe(2); // window from 199: B began in it
    expect(stats.recent(B, 10_000)?.requests).toBe(1);
    // no tick for slots 205..207: a 30 s window (from 205) reads from the copy at 208 taken by recent()
    clock.now = 207 * SLOT_MS + 1;
    stats.record(B, null, 200, 1);
    clock.now = 208 * SLOT_MS + 1;
    expect(stats.recent(B, 30_000)?.requests).toBe(0);
  });

  test("per request: no allocation once the hash and alias are known", () => {
    const stats = new RequestStats();
    stats.record(A, null, 200, 1);
    stats.record(A, "www", 200, 1);
    Bun.gc(true);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200_000; i++) stats.record(A, i % 2 ? "www" : null, 200, i % 100);
    const grown = process.memoryUsage().heapUsed - before;
    expect(grown).toBeLessThan(1_000_000);
    expect(stats.countsOf(A)?.requests).toBe(200_002);
  });
});
