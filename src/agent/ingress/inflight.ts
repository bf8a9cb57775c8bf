import { type Clock, systemClock } from "../../lib/clock.ts";

/** One hash's counters; the proxy keeps a reference per request so that leave() needs no lookup. */
export interface InFlightEntry {
  readonly hash: string;
  /** requests being proxied now (a WebSocket counts while it is open) */
  inFlight: number;
  /** requests routed to this hash since the agent started */
  total: number;
  /**
   * when a request last left, ms since the epoch: what the idle scaler measures from (while one is
   * in flight the hash is busy anyway, so entering needs no timestamp)
   */
  lastActivity: number;
}

export interface InFlightSnapshot {
  inFlight: number;
  hashes: Record<string, { inFlight: number; total: number; lastActivity: string }>;
}

/**
 * Requests in flight per hash. A request enters when the ingress has routed it and passed the stop
 * gate, and leaves when the last byte of its response was handed to the client's socket, when the
 * client or the service disconnects, or when the ingress answered it with an error.
 */
export class InFlight {
  private readonly entries = new Map<string, InFlightEntry>();
  private current = 0;

  constructor(private readonly clock: Clock = systemClock) {}

  enter(hash: string): InFlightEntry {
    let entry = this.entries.get(hash);
    if (entry === undefined) {
      entry = { hash, inFlight: 0, total: 0, lastActivity: this.clock.now() };
      this.entries.set(hash, entry);
    }
    entry.inFlight++;
    entry.total++;
    this.current++;
    return entry;
  }

  leave(entry: InFlightEntry): void {
    if (entry.inFlight <= 0) throw new Error(`in-flight count of ${entry.hash} would go below zero`);
    entry.inFlight--;
    entry.lastActivity = this.clock.now();
    this.current--;
  }

  count(hash: string): number {
    return this.entries.get(hash)?.inFlight ?? 0;
  }

  /** requests routed to the hash so far */
  requests(hash: string): number {
    return this.entries.get(hash)?.total ?? 0;
  }

  /** undefined when no request for the hash was ever seen */
  lastActivity(hash: string): number | undefined {
    return this.entries.get(hash)?.lastActivity;
  }

  get total(): number {
    return this.current;
  }

  entriesView(): Iterable<Readonly<InFlightEntry>> {
    return this.entries.values();
  }

  /** Drops the counters of a retired hash (only when nothing is in flight). */
  forget(hash: string): void {
    if (this.count(hash) === 0) this.entries.delete(hash);
  }

  snapshot(): InFlightSnapshot {
    const hashes: InFlightSnapshot["hashes"] = {};
    for (const entry of this.entries.values()) {
      hashes[entry.hash] = {
        inFlight: entry.inFlight,
        total: entry.total,
        lastActivity: new Date(entry.lastActivity).toISOString(),
      };
    }
    return { inFlight: this.current, hashes };
  }
}
