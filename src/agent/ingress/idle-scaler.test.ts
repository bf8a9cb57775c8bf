import { describe, expect, test } from "bun:test";
import { FakeClock, HASH_A, HASH_B } from "../../../test/support/ingress/servers.ts";
import { Holds } from "../holds/holds.ts";
import { IdleScaler } from "./idle-scaler.ts";
import { InFlight } from "./inflight.ts";
import { renderMetrics } from "./metrics.ts";
import { StopGate } from "./stop-gate.ts";

function setup() {
  const clock = new FakeClock();
  const inflight = new InFlight(clock);
  const holds = new Holds({ clock });
  const gate = new StopGate();
  const stopped: string[] = [];
  const dropped: string[] = [];
  let finishStop: (() => void) | undefined;
  let failNext = false;
  const control = {
    stopService(hash: string) {
      stopped.push(hash);
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error("systemctl failed"));
      }
      const { promise, resolve } = Promise.withResolvers<void>();
      finishStop = resolve;
      return promise;
    },
  };
  const scaler = new IdleScaler({
    inflight,
    holds,
    gate,
    control,
    clock,
    beforeStop: (hash) => dropped.push(hash),
    log: () => {},
  });
  return {
    clock,
    inflight,
    holds,
    gate,
    scaler,
    stopped,
    dropped,
    finish: () => finishStop?.(),
    failNextStop: () => {
      failNext = true;
    },
  };
}

describe("IdleScaler", () => {
  test("a gate someone else holds (a restart draining the hash) is left alone, and the stop comes after", () => {
    const t = setup();
    t.scaler.register(HASH_A, 30);
    t.gate.close(HASH_A);
    t.clock.advance(60_000);
    // before: the scaler closed the gate again and threw "already closed" out of its timer
    expect(t.scaler.tick()).toEqual([]);
    expect(t.stopped).toEqual([]);
    t.gate.open(HASH_A);
    expect(t.scaler.tick()).toEqual([HASH_A]);
  });

  test("stops a hash after idleStopSec without requests, once", async () => {
    const t = setup();
    t.scaler.register(HASH_A, 30);
    t.scaler.register(HASH_B, 0); // never
    t.clock.advance(29_999);
    expect(t.scaler.tick()).toEqual([]);
    t.clock.advance(1);
    expect(t.scaler.tick()).toEqual([HASH_A]);
    expect(t.scaler.phase(HASH_A)).toBe("stopping");
    expect(t.gate.isClosed(HASH_A)).toBe(true);
    expect(t.dropped).toEqual([HASH_A]);
    t.finish();
    await t.scaler.settled();
    expect(t.scaler.phase(HASH_A)).toBe("asleep");
    expect(t.gate.isClosed(HASH_A)).toBe(false);
    t.clock.advance(3_600_000);
    expect(t.scaler.tick()).toEqual([]); // asleep: nothing to stop
    expect(t.stopped).toEqual([HASH_A]);
  });

  test("a request in flight or a live hold keeps the hash awake; idle time counts from the last one", () => {
    const t = setup();
    t.scaler.register(HASH_A, 10);
    const entry = t.inflight.enter(HASH_A);
    t.clock.advance(60_000);
    expect(t.scaler.tick()).toEqual([]);
    t.inflight.leave(entry);
    t.clock.advance(9_000);
    expect(t.scaler.tick()).toEqual([]);
    const hold = t.holds.acquire(HASH_A, 5);
    t.clock.advance(4_000);
    expect(t.scaler.tick()).toEqual([]);
    t.holds.renew(hold.id);
    t.clock.advance(4_000);
    expect(t.scaler.tick()).toEqual([]); // the renewed hold is still live
    t.clock.advance(1_000); // hold expired at +5 s after the renewal
    expect(t.scaler.tick()).toEqual([]);
    t.clock.advance(10_000);
    expect(t.scaler.tick()).toEqual([HASH_A]);
  });

  test("a request between ticks counts as activity", () => {
    const t = setup();
    t.scaler.register(HASH_A, 10);
    t.clock.advance(9_000);
    t.inflight.leave(t.inflight.enter(HASH_A));
    t.clock.advance(2_000);
    expect(t.scaler.tick()).toEqual([]);
  });

  test("requests wait at the gate during a stop and go on when it completes; then the hash is awake", async () => {
    const t = setup();
    t.scaler.register(HASH_A, 1);
    t.clock.advance(1_000);
    t.scaler.tick();
    const wait = t.gate.wait(HASH_A);
    expect(wait).toBeInstanceOf(Promise);
    expect(t.gate.waiters(HASH_A)).toBe(1);
    let passed = false;
    const entered = wait?.then(() => {
      passed = true;
      return t.inflight.enter(HASH_A);
    });
    await Bun.sleep(1);
    expect(passed).toBe(false);
    t.finish();
    const entry = await entered;
    expect(passed).toBe(true);
    t.inflight.leave(entry as NonNullable<typeof entry>);
    await t.scaler.settled();
    t.clock.advance(500);
    expect(t.scaler.tick()).toEqual([]);
    expect(t.scaler.phase(HASH_A)).toBe("awake");
    t.clock.advance(500);
    expect(t.scaler.tick()).toEqual([HASH_A]); // idle again: a second stop
  });

  test("a failed stop reopens the gate and retries after another idle period", async () => {
    const t = setup();
    t.failNextStop();
    t.scaler.register(HASH_A, 5);
    t.clock.advance(5_000);
    expect(t.scaler.tick()).toEqual([HASH_A]);
    await t.scaler.settled();
    expect(t.gate.isClosed(HASH_A)).toBe(false);
    expect(t.scaler.phase(HASH_A)).toBe("awake");
    t.clock.advance(4_000);
    expect(t.scaler.tick()).toEqual([]);
    t.clock.advance(1_000);
    expect(t.scaler.tick()).toEqual([HASH_A]);
  });

  test("register is idempotent and updates idleStopSec; unregister forgets", () => {
    const t = setup();
    t.scaler.register(HASH_A, 100);
    t.clock.advance(50_000);
    t.scaler.register(HASH_A, 10);
    expect(t.scaler.tick()).toEqual([HASH_A]);
    t.scaler.unregister(HASH_B);
    t.scaler.register(HASH_B, 1);
    t.scaler.unregister(HASH_B);
    t.clock.advance(5_000);
    expect(t.scaler.tick()).toEqual([]);
    expect(() => t.scaler.register(HASH_B, -1)).toThrow();
  });
});

describe("metrics", () => {
  test("Prometheus text for in-flight, totals and holds", () => {
    const clock = new FakeClock();
    const inflight = new InFlight(clock);
    const holds = new Holds({ clock });
    inflight.enter(HASH_A);
    inflight.leave(inflight.enter(HASH_B));
    holds.acquire(HASH_A, 10);
    const text = renderMetrics({
      inflight,
      holds,
      ingress: { connections: 3, answered: new Map([[404, 2]]) },
      idleStops: 1,
    });
    expect(text).toContain("# TYPE hashd_ingress_in_flight gauge\nhashd_ingress_in_flight 1\n");
    expect(text).toContain(`hashd_ingress_hash_in_flight{hash="${HASH_A}"} 1\n`);
    expect(text).toContain(`hashd_ingress_hash_in_flight{hash="${HASH_B}"} 0\n`);
    expect(text).toContain(`hashd_ingress_requests_total{hash="${HASH_B}"} 1\n`);
    expect(text).toContain(`hashd_holds{hash="${HASH_A}"} 1\n`);
    expect(text).toContain('hashd_ingress_answered_total{status="404"} 2\n');
    expect(text).toContain("hashd_idle_stops_total 1\n");
    // every sample line is `name{labels} value`, every family has one HELP and one TYPE
    for (const line of text.trimEnd().split("\n")) {
      expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{\w+="[^"]*"(,\w+="[^"]*")*\})? -?[\d.e+]+)$/);
    }
    expect(inflight.snapshot()).toMatchObject({
      inFlight: 1,
      hashes: { [HASH_A]: { inFlight: 1, total: 1 } },
    });
  });
});
