import { describe, expect, test } from "bun:test";
import { HashdError } from "../../lib/errors.ts";
import { Holds } from "./holds.ts";
import { FakeClock, HASH_A, HASH_B } from "./test-support.ts";

function setup() {
  const clock = new FakeClock();
  let n = 0;
  const holds = new Holds({ clock, newId: () => `hold-${++n}` });
  return { clock, holds };
}

describe("Holds", () => {
  test("a lease keeps its hash busy until it expires by itself", () => {
    const { clock, holds } = setup();
    const hold = holds.acquire(HASH_A, 30);
    expect(hold).toMatchObject({ id: "hold-1", hash: HASH_A, ttlSec: 30, expiresAt: clock.t + 30_000 });
    expect(holds.activeCount(HASH_A)).toBe(1);
    clock.advance(29_999);
    expect(holds.activeCount(HASH_A)).toBe(1);
    clock.advance(1);
    expect(holds.activeCount(HASH_A)).toBe(0);
    expect(holds.list()).toEqual([]);
    // the hash was busy until the expiry time, not until someone looked
    clock.advance(10_000);
    expect(holds.lastEnded(HASH_A)).toBe(hold.expiresAt);
  });

  test("renewal extends from now, with the lease's ttl or a new one", () => {
    const { clock, holds } = setup();
    const { id } = holds.acquire(HASH_A, 10);
    clock.advance(8_000);
    expect(holds.renew(id).expiresAt).toBe(clock.t + 10_000);
    clock.advance(9_000);
    expect(holds.activeCount(HASH_A)).toBe(1);
    expect(holds.renew(id, 60)).toMatchObject({ ttlSec: 60, expiresAt: clock.t + 60_000 });
  });

  test("an expired lease can't be renewed or released", () => {
    const { clock, holds } = setup();
    const { id } = holds.acquire(HASH_A, 1);
    clock.advance(1_000);
    expect(() => holds.renew(id)).toThrow(/no live hold/);
    expect(() => holds.release(id)).toThrow(HashdError);
  });

  test("release ends the hold at once; holds of other hashes are untouched", () => {
    const { clock, holds } = setup();
    const a = holds.acquire(HASH_A, 60);
    holds.acquire(HASH_B, 60);
    clock.advance(5);
    holds.release(a.id);
    expect(holds.activeCount(HASH_A)).toBe(0);
    expect(holds.lastEnded(HASH_A)).toBe(clock.t);
    expect(holds.list().map((h) => h.hash)).toEqual([HASH_B]);
    expect(() => holds.release(a.id)).toThrow(/no live hold/);
  });

  test("refuses bad input", () => {
    const { holds } = setup();
    expect(() => holds.acquire("not-a-hash", 10)).toThrow(/not a store hash/);
    expect(() => holds.acquire(HASH_A, 0)).toThrow(/ttlSec/);
    expect(() => holds.acquire(HASH_A, "10")).toThrow(/ttlSec/);
    expect(() => holds.acquire(HASH_A, 86_401)).toThrow(/ttlSec/);
    const few = new Holds({ maxPerHash: 1 });
    few.acquire(HASH_A, 10);
    expect(() => few.acquire(HASH_A, 10)).toThrow(/already has 1 holds/);
  });
});
