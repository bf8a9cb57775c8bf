import { type Clock, systemClock } from "../../lib/clock.ts";
import { HashdError } from "../../lib/errors.ts";
import { parseStoreHash } from "../../nix/store-path.ts";

/**
 * Leased holds: work that outlives a request (a queue consumer, a job) keeps its hash busy by
 * holding a lease and renewing it. A lease that is not renewed ends at its expiry time by itself,
 * so a crashed service can never pin its version forever. Expiry is evaluated against the clock
 * on every read; nothing depends on a timer firing.
 *
 * With a journal (the agent's database), every acquire, renewal and release is written before it
 * is answered, and a new agent process starts from the holds its predecessor granted: a restart
 * (an upgrade, a kill -9) must not forget a job's hold, or its hash could retire under the job.
 */
export interface Hold {
  id: string;
  hash: string;
  ttlSec: number;
  createdAt: number;
  expiresAt: number;
}

/** Where holds are kept across agent restarts (StateStore implements it). */
export interface HoldJournal {
  /** every hold saved and not removed, expired ones included */
  holds(): Hold[];
  /** a new hold, or a renewal of a saved one */
  saveHold(hold: Hold): void;
  removeHolds(ids: readonly string[]): void;
}

export interface HoldsOptions {
  clock?: Clock;
  /**
   * Called when a hash's count of holds changed by an acquire or a release (not by an expiry,
   * which is found by sweep()): the agent publishes its report at once, not at its next tick.
   */
  onCountChange?: (hash: string) => void;
  /** keeps holds across restarts; the constructor restores what it holds */
  journal?: HoldJournal;
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
  private readonly journal: HoldJournal | undefined;
  private readonly onCountChange: ((hash: string) => void) | undefined;

  constructor(options: HoldsOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.maxTtlSec = options.maxTtlSec ?? 86_400;
    this.maxPerHash = options.maxPerHash ?? 1024;
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.journal = options.journal;
    this.onCountChange = options.onCountChange;
    this.restore();
  }

  /**
   * The holds a previous process granted, each as if renewed at this start: while no agent ran,
   * its client's renewals failed, so its lease runs at least one more ttl from now (the job
   * renews it then, or it runs out). Leases that ran out while an agent ran are not in the
   * journal any more (the agent sweeps it every few hundred ms).
   */
  private restore(): void {
    if (!this.journal) return;
    const now = this.clock.now();
    for (const hold of this.journal.holds()) {
      const restored = { ...hold, expiresAt: Math.max(hold.expiresAt, now + hold.ttlSec * 1000) };
      if (restored.expiresAt !== hold.expiresAt) this.journal.saveHold(restored);
      this.byId.set(hold.id, restored);
    }
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
    this.journal?.saveHold(hold);
    this.byId.set(hold.id, hold);
    this.onCountChange?.(hash);
    return { ...hold };
  }

  /** Extends a live lease to now + ttl (the lease's own ttl unless another is given). */
  renew(id: string, ttlSec?: unknown): Hold {
    const hold = this.live(id);
    const ttl = ttlSec === undefined ? hold.ttlSec : this.parseTtl(ttlSec);
    const renewed: Hold = { ...hold, ttlSec: ttl, expiresAt: this.clock.now() + ttl * 1000 };
    this.journal?.saveHold(renewed);
    this.byId.set(id, renewed);
    return { ...renewed };
  }

  release(id: string): void {
    const hold = this.live(id);
    this.journal?.removeHolds([id]);
    this.byId.delete(id);
    this.ended(hold.hash, this.clock.now());
    this.onCountChange?.(hold.hash);
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

  /**
   * Removes expired leases, crediting each hash with the expiry time (not the time of the sweep).
   * The agent calls it on a timer too, so the journal does not keep expired leases for long.
   */
  sweep(): void {
    const now = this.clock.now();
    const gone: Hold[] = [];
    for (const hold of this.byId.values()) if (hold.expiresAt <= now) gone.push(hold);
    if (gone.length === 0) return;
    this.journal?.removeHolds(gone.map((h) => h.id));
    for (const hold of gone) {
      this.byId.delete(hold.id);
      this.ended(hold.hash, hold.expiresAt);
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
