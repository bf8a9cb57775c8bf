/**
 * Lifeguard's dynamic suspicion timeout (Dadgar et al. 2018, section IV-B; memberlist
 * suspicion.go). A suspicion starts with a long timeout (max) and shrinks towards min, on a log
 * scale, as independent members confirm it. A lone slow member that suspects a healthy peer
 * waits the longest, giving the peer time to refute; a real failure seen by many is declared
 * quickly.
 */

/**
 * Milliseconds left before a suspect is declared dead, after n of the k wanted confirmations and
 * `elapsedMs` since the suspicion started. Negative means "now". memberlist floors the timeout
 * to whole milliseconds; so do we (its suspicion_test.go table holds here too).
 */
export const remainingSuspicionTime = (
  n: number,
  k: number,
  elapsedMs: number,
  minMs: number,
  maxMs: number,
): number => {
  const frac = k <= 0 ? 1 : Math.log(n + 1) / Math.log(k + 1);
  const raw = maxMs - frac * (maxMs - minMs);
  const timeout = Math.max(Math.floor(raw), minMs);
  return timeout - elapsedMs;
};

/**
 * Where the last-chance probe of a suspect stands (recheck.ts): not sent yet, under way (its
 * sequence number and when its window ends), or unanswered.
 */
export type Recheck =
  | { phase: "due" }
  | { phase: "running"; seq: number; endsAt: number }
  | { phase: "unanswered" };

/**
 * The state of one suspicion: who has confirmed it and when it started. Pure data; the core turns
 * `deadline()` into a timer carrying `token`, and a confirmation that moves the deadline issues a
 * new token so the earlier timer arrives stale and is ignored.
 */
export class Suspicion {
  private n = 0;
  private readonly confirmations = new Set<string>();
  recheck: Recheck = { phase: "due" };
  /** No death before this (set when the member answered a recheck without refuting yet). */
  notBefore = 0;

  constructor(
    /** The incarnation the suspicion is about. */
    readonly incarnation: number,
    from: string,
    readonly k: number,
    readonly minMs: number,
    readonly maxMs: number,
    readonly startedAt: number,
    public token: number,
  ) {
    // The accuser itself is not a confirmation: our own suspicion can come back to us by gossip.
    this.confirmations.add(from);
  }

  get confirmationCount(): number {
    return this.n;
  }

  /**
   * Record that `from` independently suspects the member too. True if this was new information
   * (worth re-gossiping), false for a duplicate or once k confirmations were reached.
   */
  confirm(from: string): boolean {
    if (this.n >= this.k) return false;
    if (this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    this.n++;
    return true;
  }

  /** Absolute time at which the member is declared dead. */
  deadline(): number {
    const due = this.startedAt + remainingSuspicionTime(this.n, this.k, 0, this.minMs, this.maxMs);
    return Math.max(due, this.notBefore);
  }
}
