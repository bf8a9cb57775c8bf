import { type Clock, systemClock } from "../../lib/clock.ts";
import type { Holds } from "../holds/holds.ts";
import type { InFlight } from "./inflight.ts";
import type { StopGate } from "./stop-gate.ts";
import { defaultLog, type IngressLog, type ServiceControl } from "./types.ts";

export type ScalePhase = "awake" | "stopping" | "asleep";

interface Tracked {
  idleStopSec: number;
  /** counts as activity: a hash just activated (or re-registered) gets a full idle period */
  since: number;
  phase: ScalePhase;
  /** the hash's request total when it went to sleep: any new request means it woke */
  requestsAtSleep: number;
}

export interface IdleScalerOptions {
  inflight: InFlight;
  holds: Holds;
  control: ServiceControl;
  gate: StopGate;
  clock?: Clock;
  /** runs with the gate closed, before the stop: the ingress drops pooled connections to the hash */
  beforeStop?: (hash: string) => void;
  log?: IngressLog;
}

/**
 * Scale to zero. A registered hash whose idleStopSec is above 0 is stopped once it has had no
 * request in flight and no live hold for idleStopSec; its socket unit keeps listening, so the next
 * request starts it again. The agent registers each local hash from its manifest's idleStopSec when
 * it activates or re-adopts it, and unregisters it when it retires it.
 *
 * tick() is the whole decision and takes its time from the clock, so tests drive it with a fake
 * clock; start() only calls tick() on an interval.
 */
export class IdleScaler {
  private readonly tracked = new Map<string, Tracked>();
  private readonly stopping = new Set<Promise<void>>();
  private readonly clock: Clock;
  private readonly log: IngressLog;
  private timer: ReturnType<typeof setInterval> | undefined;
  stops = 0;

  constructor(private readonly options: IdleScalerOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? defaultLog;
  }

  /** Idempotent; a new idleStopSec replaces the old one. 0 means never stop. */
  register(hash: string, idleStopSec: number): void {
    if (!Number.isFinite(idleStopSec) || idleStopSec < 0)
      throw new Error(`idleStopSec must be >= 0, got ${idleStopSec}`);
    const existing = this.tracked.get(hash);
    if (existing !== undefined) {
      existing.idleStopSec = idleStopSec;
      return;
    }
    this.tracked.set(hash, { idleStopSec, since: this.clock.now(), phase: "awake", requestsAtSleep: 0 });
  }

  unregister(hash: string): void {
    this.tracked.delete(hash);
  }

  phase(hash: string): ScalePhase | undefined {
    return this.tracked.get(hash)?.phase;
  }

  /** Checks every registered hash once; returns the hashes whose stop it started. */
  tick(): string[] {
    const now = this.clock.now();
    const { inflight, holds } = this.options;
    const started: string[] = [];
    for (const [hash, tracked] of this.tracked) {
      if (tracked.idleStopSec <= 0 || tracked.phase === "stopping") continue;
      // someone else holds the gate (a restart draining it, lifecycle/restart.ts): not idle now
      if (this.options.gate.isClosed(hash)) continue;
      if (inflight.count(hash) > 0 || holds.activeCount(hash) > 0) {
        tracked.phase = "awake";
        continue;
      }
      if (tracked.phase === "asleep") {
        if (inflight.requests(hash) === tracked.requestsAtSleep) continue;
        tracked.phase = "awake";
      }
      const lastActive = Math.max(
        tracked.since,
        inflight.lastActivity(hash) ?? 0,
        holds.lastEnded(hash) ?? 0,
      );
      if (now - lastActive >= tracked.idleStopSec * 1000) {
        this.stop(hash, tracked);
        started.push(hash);
      }
    }
    return started;
  }

  start(intervalMs = 1000): void {
    this.timer ??= setInterval(() => this.tick(), intervalMs);
    this.timer.unref?.();
  }

  /** Stops ticking and waits for stops already under way (their gates open when they end). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.settled();
  }

  /** Resolves when no stop is in progress. */
  async settled(): Promise<void> {
    while (this.stopping.size > 0) await Promise.allSettled([...this.stopping]);
  }

  private stop(hash: string, tracked: Tracked): void {
    const { gate, control, inflight } = this.options;
    tracked.phase = "stopping";
    gate.close(hash);
    try {
      this.options.beforeStop?.(hash);
    } catch (error) {
      this.log("warn", "beforeStop failed", { hash, error: String(error) });
    }
    this.stops++;
    this.log("info", "idle stop", { hash, idleStopSec: tracked.idleStopSec });
    const done = control
      .stopService(hash)
      .then(
        () => {
          tracked.phase = "asleep";
          tracked.requestsAtSleep = inflight.requests(hash);
        },
        (error: unknown) => {
          // keep running and try again after another idle period
          this.log("error", "idle stop failed", { hash, error: String(error) });
          tracked.phase = "awake";
          tracked.since = this.clock.now();
        },
      )
      .finally(() => {
        gate.open(hash);
        this.stopping.delete(done);
      });
    this.stopping.add(done);
  }
}
