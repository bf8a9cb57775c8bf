import { HashdError } from "../../lib/errors.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import { type Clock, systemClock } from "./types.ts";

/**
 * Leased holds: work that outlives a request (a queue consumer, a job) keeps its hash busy by
 * holding a lease and renewing it. A lease that is not renewed ends at its expiry time by itself,
 * so a crashed service can never pin its version forever. Expiry is evaluated against the clock
 * on every read; nothing depends on a timer firing.
 */
export interface Hold {
  id: string;
  hash: string;
  ttlSec: number;
  createdAt: number;
  expiresAt: number;
}

export interface HoldsOptions {
  clock?: Clock;
  /** longest lease one acquire or renew may ask for */
  maxTtlSec?: number;
  /** most live holds per hash (a runaway client can't fill memory) */
  maxPerHash?: number;
  newId?: () => string;
}

export class Holds {
  private readonly byId = new Map<string, Hold>();
  /** per hash: when its last hold ended (released or expired), for the idle scaler */
  private readonly endedAt = new Map<string, number>();
  private readonly clock: Clock;
  readonly maxTtlSec: number;
  private readonly maxPerHash: number;
  private readonly newId: () => string;

  constructor(options: HoldsOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.maxTtlSec = options.maxTtlSec ?? 86_400;
    this.maxPerHash = options.maxPerHash ?? 1024;
    this.newId = options.newId ?? (() => crypto.randomUUID());
  }

  acquire(hashInput: unknown, ttlSec: unknown): Hold {
    const hash = parseStoreHash(hashInput);
    const ttl = this.parseTtl(ttlSec);
    this.sweep();
    if (this.activeCount(hash) >= this.maxPerHash) {
      throw new HashdError("conflict", `hash ${hash} already has ${this.maxPerHash} holds`);
    }
    const now = this.clock.now();
    const hold: Hold = { id: this.newId(), hash, ttlSec: ttl, createdAt: now, expiresAt: now + ttl * 1000 };
    this.byId.set(hold.id, hold);
    return { ...hold };
  }

  /** Extends a live lease to now + ttl (the lease's own ttl unless another is given). */
  renew(id: string, ttlSec?: unknown): Hold {
    const hold = this.live(id);
    if (ttlSec !== undefined) hold.ttlSec = this.parseTtl(ttlSec);
    hold.expiresAt = this.clock.now() + hold.ttlSec * 1000;
    return { ...hold };
  }

  release(id: string): void {
    const hold = this.live(id);
    this.byId.delete(id);
    this.ended(hold.hash, this.clock.now());
  }

  get(id: string): Hold {
    return { ...this.live(id) };
  }

  list(hash?: string): Hold[] {
    this.sweep();
    const holds = [...this.byId.values()].filter((hold) => hash === undefined || hold.hash === hash);
    return holds.map((hold) => ({ ...hold }));
  }

  activeCount(hash: string): number {
    const now = this.clock.now();
    let count = 0;
    for (const hold of this.byId.values()) if (hold.hash === hash && hold.expiresAt > now) count++;
    return count;
  }

  /** When the hash's last hold ended; undefined if it never had one. */
  lastEnded(hash: string): number | undefined {
    this.sweep();
    return this.endedAt.get(hash);
  }

  /** Removes expired leases, crediting each hash with the expiry time (not the time of the sweep). */
  sweep(): void {
    const now = this.clock.now();
    for (const hold of this.byId.values()) {
      if (hold.expiresAt <= now) {
        this.byId.delete(hold.id);
        this.ended(hold.hash, hold.expiresAt);
      }
    }
  }

  private live(id: string): Hold {
    const hold = this.byId.get(id);
    if (hold === undefined || hold.expiresAt <= this.clock.now()) {
      this.sweep();
      throw new HashdError(
        "not_found",
        `no live hold ${JSON.stringify(id.slice(0, 64))} (released, expired or never existed)`,
      );
    }
    return hold;
  }

  private ended(hash: string, at: number): void {
    this.endedAt.set(hash, Math.max(this.endedAt.get(hash) ?? 0, at));
  }

  private parseTtl(value: unknown): number {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > this.maxTtlSec) {
      throw new HashdError(
        "bad_request",
        `ttlSec must be a number of seconds, 0 < ttlSec <= ${this.maxTtlSec}`,
      );
    }
    return value;
  }
}
