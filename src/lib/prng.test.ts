import { describe, expect, test } from "bun:test";
import { randomBetween, randomFloat, randomInt, SystemRng, shuffle, Xoshiro128 } from "./prng.ts";

describe("Xoshiro128 (xoshiro128** 1.1)", () => {
  test("matches the reference C implementation for state (1, 2, 3, 4)", () => {
    // Output of prng.di.unimi.it/xoshiro128starstar.c compiled with gcc, s = {1, 2, 3, 4}.
    const x = Xoshiro128.fromState(1, 2, 3, 4);
    expect(Array.from({ length: 6 }, () => x.nextU32())).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492,
    ]);
  });

  test("same seed, same sequence; different seeds differ", () => {
    const a = new Xoshiro128(42);
    const b = new Xoshiro128(42);
    const c = new Xoshiro128(43);
    const sa = Array.from({ length: 100 }, () => a.nextU32());
    expect(Array.from({ length: 100 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 100 }, () => c.nextU32())).not.toEqual(sa);
  });

  test("seed 0 is usable (splitmix expansion avoids the all-zero state)", () => {
    const x = new Xoshiro128(0);
    const values = new Set(Array.from({ length: 50 }, () => x.nextU32()));
    expect(values.size).toBe(50);
  });

  test("forks are deterministic and independent of each other", () => {
    const f1 = new Xoshiro128(9).fork();
    const f2 = new Xoshiro128(9).fork();
    expect(f1.nextU32()).toBe(f2.nextU32());
    const parent = new Xoshiro128(9);
    const a = parent.fork();
    const b = parent.fork();
    expect(a.nextU32()).not.toBe(b.nextU32());
  });

  test("outputs are unsigned 32-bit and roughly uniform", () => {
    const x = new Xoshiro128(7);
    const buckets = new Array(16).fill(0);
    for (let i = 0; i < 32_000; i++) {
      const v = x.nextU32();
      expect(v >= 0 && v <= 0xffffffff && Number.isInteger(v)).toBe(true);
      buckets[v >>> 28]++;
    }
    for (const b of buckets) expect(Math.abs(b - 2000)).toBeLessThan(250);
  });
});

describe("helpers", () => {
  test("randomInt, randomBetween, randomFloat stay in range", () => {
    const x = new Xoshiro128(1);
    for (let i = 0; i < 1000; i++) {
      const f = randomFloat(x);
      expect(f >= 0 && f < 1).toBe(true);
      const n = randomInt(x, 7);
      expect(n >= 0 && n < 7).toBe(true);
      const b = randomBetween(x, 3, 5);
      expect(b >= 3 && b <= 5).toBe(true);
    }
    expect(randomInt(x, 0)).toBe(0);
    expect(randomInt(x, 1)).toBe(0);
  });

  test("shuffle is a deterministic permutation", () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const a = shuffle(new Xoshiro128(5), [...items]);
    expect(shuffle(new Xoshiro128(5), [...items])).toEqual(a);
    expect([...a].sort((p, q) => p - q)).toEqual(items);
    expect(a).not.toEqual(items);
  });

  test("SystemRng gives varied 32-bit values across its refill boundary", () => {
    const r = new SystemRng();
    const values = Array.from({ length: 600 }, () => r.nextU32());
    expect(new Set(values).size).toBeGreaterThan(590);
    expect(values.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)).toBe(true);
  });
});
