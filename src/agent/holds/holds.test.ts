import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { FakeClock, HASH_A, HASH_B } from "../../../test/support/ingress/servers.ts";
import { HashdError } from "../../lib/errors.ts";
import { StateStore } from "../state/store.ts";
import { Holds } from "./holds.ts";

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

describe("Holds kept in the agent's database", () => {
  /** One agent process after another on the same database file (a restart, a kill -9). */
  function agentProcesses() {
    const file = `${mkdtempSync(`${tmpdir()}/hashd-holds-`)}/state.sqlite`;
    const clock = new FakeClock();
    let n = 0;
    const open: StateStore[] = [];
    const start = () => {
      // the previous process's connection is not closed: a kill -9 closes nothing
      const store = new StateStore(file, () => clock.t);
      open.push(store);
      return { store, holds: new Holds({ clock, journal: store, newId: () => `hold-${++n}` }) };
    };
    return {
      clock,
      start,
      close: () => {
        for (const s of open) s.close();
      },
    };
  }

  test("a restarted agent keeps a live hold, as if renewed at its start; it can be renewed and released", () => {
    const { clock, start, close } = agentProcesses();
    const first = start();
    const hold = first.holds.acquire(HASH_A, 30);
    clock.advance(10_000);
    const renewed = first.holds.renew(hold.id, 60);

    clock.advance(5_000);
    const second = start();
    expect(second.holds.activeCount(HASH_A)).toBe(1);
    // the job may have missed a renewal while the agent was down: the lease counts from the start
    expect(second.holds.get(hold.id)).toEqual({ ...renewed, expiresAt: clock.t + 60_000 });
    clock.advance(20_000);
    expect(second.holds.renew(hold.id).expiresAt).toBe(clock.t + 60_000);
    second.holds.release(hold.id);
    expect(second.store.holds()).toEqual([]);
    expect(start().holds.list()).toEqual([]);
    close();
  });

  test("a lease that ran out while the agent was down gets one more ttl; one that ran out while it ran is gone", () => {
    const { clock, start, close } = agentProcesses();
    const first = start();
    const swept = first.holds.acquire(HASH_B, 1);
    const held = first.holds.acquire(HASH_A, 10);
    clock.advance(2_000);
    first.holds.sweep(); // the agent's timer: HASH_B's lease ran out while the agent ran
    expect(first.store.holds().map((h) => h.id)).toEqual([held.id]);

    clock.advance(60_000); // the agent is down: HASH_A's job cannot renew, its lease runs out
    const second = start();
    expect(second.holds.activeCount(HASH_B)).toBe(0);
    expect(() => second.holds.get(swept.id)).toThrow(/no live hold/);
    expect(second.holds.get(held.id).expiresAt).toBe(clock.t + 10_000);
    expect(second.store.holds()[0]?.expiresAt).toBe(clock.t + 10_000);
    clock.advance(3_000);
    expect(second.holds.renew(held.id).expiresAt).toBe(clock.t + 10_000); // the job's next renewal

    // not renewed again: it runs out like any lease, and the sweep takes it out of the database
    clock.advance(10_000);
    expect(second.holds.activeCount(HASH_A)).toBe(0);
    second.holds.sweep();
    expect(second.store.holds()).toEqual([]);
    close();
  });

  test("a refused acquire writes nothing", () => {
    const { start, close } = agentProcesses();
    const { store, holds } = start();
    expect(() => holds.acquire(HASH_A, 0)).toThrow(/ttlSec/);
    expect(() => holds.acquire("nope", 10)).toThrow(/not a store hash/);
    expect(store.holds()).toEqual([]);
    close();
  });
});

describe("Holds: count changes", () => {
  test("acquire and release report the hash (a renewal changes no count, an expiry is the sweep's)", () => {
    const clock = new FakeClock();
    const changed: string[] = [];
    const holds = new Holds({ clock, onCountChange: (hash) => changed.push(hash) });
    const a = holds.acquire(HASH_A, 10);
    const b = holds.acquire(HASH_B, 1);
    holds.renew(a.id);
    holds.release(a.id);
    clock.advance(2000);
    holds.sweep();
    expect(holds.activeCount(HASH_B)).toBe(0);
    expect(changed).toEqual([HASH_A, HASH_B, HASH_A]);
    expect(b.hash).toBe(HASH_B);
  });
});
