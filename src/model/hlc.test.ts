import { describe, expect, test } from "bun:test";
import { randomInt, Xoshiro128 } from "../lib/prng.ts";
import { compareHlc, compareWrites, type Hlc, hlcReceive, hlcTick, hlcTooFarAhead } from "./hlc.ts";

const h = (wall: number, logical: number): Hlc => ({ wall, logical });

describe("hlcTick (local event)", () => {
  const cases: [Hlc, number, Hlc][] = [
    [h(0, 0), 100, h(100, 0)], // physical clock ahead: take it, reset logical
    [h(100, 0), 100, h(100, 1)], // same millisecond: count
    [h(100, 5), 100, h(100, 6)],
    [h(200, 3), 150, h(200, 4)], // physical clock behind (stepped back): never go backwards
    [h(200, 3), 201, h(201, 0)],
  ];
  test.each(cases)("%p at pt=%d -> %p", (clock, pt, expected) => {
    expect(hlcTick(clock, pt)).toEqual(expected);
  });
});

describe("hlcReceive (Kulkarni et al. receive rule)", () => {
  // [local, remote, physical, expected]
  const cases: [Hlc, Hlc, number, Hlc][] = [
    [h(100, 2), h(90, 7), 300, h(300, 0)], // physical clock dominates
    [h(100, 2), h(100, 7), 50, h(100, 8)], // all equal walls: max logical + 1
    [h(100, 9), h(100, 7), 50, h(100, 10)],
    [h(120, 2), h(100, 7), 50, h(120, 3)], // local wall dominates
    [h(100, 2), h(150, 7), 120, h(150, 8)], // remote wall dominates
    [h(0, 0), h(0, 0), 0, h(0, 1)],
  ];
  test.each(cases)("local %p remote %p pt=%d -> %p", (local, remote, pt, expected) => {
    expect(hlcReceive(local, remote, pt)).toEqual(expected);
  });
});

describe("ordering", () => {
  test("compareHlc is lexicographic on (wall, logical)", () => {
    expect(compareHlc(h(1, 9), h(2, 0))).toBe(-1);
    expect(compareHlc(h(2, 1), h(2, 0))).toBe(1);
    expect(compareHlc(h(2, 1), h(2, 1))).toBe(0);
  });

  test("compareWrites breaks HLC ties by origin name", () => {
    const a = { hlc: h(5, 1), origin: "alpha" };
    const b = { hlc: h(5, 1), origin: "beta" };
    expect(compareWrites(a, b)).toBe(-1);
    expect(compareWrites(b, a)).toBe(1);
    expect(compareWrites(a, { ...a })).toBe(0);
    expect(compareWrites({ hlc: h(6, 0), origin: "alpha" }, b)).toBe(1);
  });

  test("drift guard", () => {
    expect(hlcTooFarAhead(h(1000 + 60_001, 0), 1000, 60_000)).toBe(true);
    expect(hlcTooFarAhead(h(1000 + 60_000, 0), 1000, 60_000)).toBe(false);
    expect(hlcTooFarAhead(h(0, 0), 1000, 60_000)).toBe(false);
  });
});

describe("properties over random runs", () => {
  test("monotonic, causal, and within the skew of physical time", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rng = new Xoshiro128(seed);
      // three processes with skewed, sometimes backwards clocks exchanging messages
      const skew = [0, 40, -25];
      const clocks: Hlc[] = [h(0, 0), h(0, 0), h(0, 0)];
      let t = 1000;
      let maxPhysical = 0;
      for (let step = 0; step < 500; step++) {
        t += randomInt(rng, 3);
        const p = randomInt(rng, 3);
        const pt = t + (skew[p] as number) - randomInt(rng, 5);
        maxPhysical = Math.max(maxPhysical, pt);
        const before = clocks[p] as Hlc;
        let after: Hlc;
        if (randomInt(rng, 2) === 0) {
          after = hlcTick(before, pt);
        } else {
          const sender = clocks[randomInt(rng, 3)] as Hlc;
          after = hlcReceive(before, sender, pt);
          expect(compareHlc(after, sender)).toBe(1); // causality: after the message it received
        }
        expect(compareHlc(after, before)).toBe(1); // strictly monotonic
        expect(after.wall).toBeLessThanOrEqual(maxPhysical); // never invents time
        clocks[p] = after;
      }
    }
  });
});
