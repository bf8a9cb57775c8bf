import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  FakeClock,
  HASH_A,
  MapRoutes,
  startUpstream,
  tempDir,
  type Upstream,
  until,
} from "../../../test/support/ingress/servers.ts";
import { Holds } from "../holds/holds.ts";
import { IdleScaler } from "./idle-scaler.ts";
import { InFlight } from "./inflight.ts";
import { type Ingress, startIngress } from "./server.ts";
import { StopGate } from "./stop-gate.ts";

/**
 * Stands in for a socket unit + service pair. Stricter than systemd: while the service is
 * stopping, its socket is gone (systemd would keep it listening), so any request that reached the
 * socket during a stop would fail; the gate is what must prevent that. After a stop the socket
 * listens again and the first request meets a cold start.
 */
class FakeUnit {
  server: Upstream | undefined;
  generation = 0;
  stops = 0;
  constructor(
    readonly socketPath: string,
    readonly stopMs: number,
    readonly coldStartMs: number,
  ) {}

  start(): void {
    const generation = ++this.generation;
    let cold = true;
    this.server = startUpstream(this.socketPath, async () => {
      if (cold) {
        cold = false;
        await Bun.sleep(this.coldStartMs);
      }
      return new Response(`generation ${generation}`);
    });
  }

  async stopService(): Promise<void> {
    this.stops++;
    this.server?.stop(true);
    rmSync(this.socketPath, { force: true });
    await Bun.sleep(this.stopMs);
    this.start(); // the socket listens again; the next connection "activates" the service
  }
}

const dir = tempDir();
const clock = new FakeClock();
const inflight = new InFlight(clock);
const holds = new Holds({ clock });
const gate = new StopGate();
const unit = new FakeUnit(join(dir.path, "a.sock"), 150, 30);
let ingress: Ingress;
let scaler: IdleScaler;
let base: string;

beforeAll(() => {
  unit.start();
  ingress = startIngress({
    config: { port: 0 },
    routes: new MapRoutes().local(HASH_A, unit.socketPath),
    inflight,
    gate,
    log: () => {},
  });
  scaler = new IdleScaler({
    inflight,
    holds,
    gate,
    clock,
    control: { stopService: () => unit.stopService() },
    beforeStop: (hash) => ingress.dropIdleUpstreams(hash),
    log: () => {},
  });
  base = `http://127.0.0.1:${ingress.port}/h/${HASH_A}/`;
});

afterAll(async () => {
  await scaler.close();
  await ingress.stop(0);
  unit.server?.stop(true);
  dir.remove();
});

describe("scale to zero through the ingress", () => {
  test("idle stop, then a request during the stop waits at the gate and is answered by the restarted service", async () => {
    scaler.register(HASH_A, 1);
    expect(await (await fetch(base)).text()).toBe("generation 1");
    expect(ingress.stats().idleUpstreams).toBe(1);
    clock.advance(1_000);
    expect(scaler.tick()).toEqual([HASH_A]);
    expect(ingress.stats().idleUpstreams).toBe(0); // pooled connections to the old process dropped
    const started = Date.now();
    const during = fetch(base);
    await until(() => gate.waiters(HASH_A) === 1, 1000, "request to wait at the gate");
    const response = await during;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("generation 2");
    expect(Date.now() - started).toBeGreaterThanOrEqual(100); // it waited for the stop
    await scaler.settled();
    expect(scaler.tick()).toEqual([]); // the request woke it: a new idle period starts
    expect(scaler.phase(HASH_A)).toBe("awake");
    expect(unit.stops).toBe(1);
  });

  test("a hold keeps it running; releasing the hold lets it stop", async () => {
    const hold = holds.acquire(HASH_A, 60);
    clock.advance(10_000);
    expect(scaler.tick()).toEqual([]);
    holds.release(hold.id);
    clock.advance(1_000);
    expect(scaler.tick()).toEqual([HASH_A]);
    await scaler.settled();
  });

  test("steady load with repeated idle stops: every request is answered", async () => {
    const result = await steadyLoadWithStops(scaler);
    expect(result.failures).toEqual([]);
    expect(result.stops).toBeGreaterThanOrEqual(3);
    expect(result.answered).toBeGreaterThan(50);
    expect(inflight.count(HASH_A)).toBe(0);
  });

  test("control: the same load without the gate loses requests", async () => {
    const ungated = new IdleScaler({
      inflight,
      holds,
      gate: new StopGate(), // not the ingress's gate
      clock,
      control: { stopService: () => unit.stopService() },
      log: () => {},
    });
    ungated.register(HASH_A, 1);
    // This fake removes its socket while it stops (systemd keeps it listening), and the ingress
    // waits for a missing socket to come back (socketWaitSec), which would hide the stop here: this
    // ingress does not wait, so what the gate keeps from the service is seen.
    const impatient = startIngress({
      config: { port: 0, socketWaitSec: 0.001 },
      routes: new MapRoutes().local(HASH_A, unit.socketPath),
      inflight,
      log: () => {},
    });
    const result = await steadyLoadWithStops(ungated, `http://127.0.0.1:${impatient.port}/h/${HASH_A}/`);
    await impatient.stop(0);
    expect(result.stops).toBeGreaterThanOrEqual(3);
    expect(result.failures.length).toBeGreaterThan(0);
    expect(result.failures[0]).toMatch(/^502 /);
  });
});

/** 8 clients in a loop for 2.5 s while the scaler ticks every 20 ms with a full idle period each time. */
async function steadyLoadWithStops(idle: IdleScaler, url = base) {
  const stopsBefore = unit.stops;
  let answered = 0;
  const failures: string[] = [];
  let running = true;
  const client = async () => {
    while (running) {
      try {
        const response = await fetch(url);
        const text = await response.text();
        if (response.status !== 200 || !text.startsWith("generation"))
          failures.push(`${response.status} ${text}`);
        else answered++;
      } catch (error) {
        failures.push(String(error));
      }
      await Bun.sleep(Math.random() * 3);
    }
  };
  const clients = Array.from({ length: 8 }, client);
  const deadline = Date.now() + 2_500;
  while (Date.now() < deadline) {
    // each tick sees a whole idle period: a stop starts whenever nothing is in flight at that instant
    clock.advance(1_000);
    idle.tick();
    await Bun.sleep(20);
  }
  running = false;
  await Promise.all(clients);
  await idle.settled();
  return { answered, failures, stops: unit.stops - stopsBefore };
}
