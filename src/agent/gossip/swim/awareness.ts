/**
 * Lifeguard's Local Health Multiplier (Dadgar, Phillips, Currey 2018, section IV-A; memberlist
 * awareness.go). A member that misses acks it should have got, or has to refute suspicions of
 * itself, is more likely slow itself (CPU starved, GC pause, saturated NIC) than surrounded by
 * failures: it raises its score and stretches its own probe interval and timeout, so it stops
 * accusing healthy peers. Score 0 is healthy; it is clamped to [0, max - 1].
 *
 * Deltas (as memberlist): a probe answered by an ack -1; a probe that failed, +1 for every
 * ping-req helper that did not even send a nack (or +1 if no helper could be asked); a refutation
 * of a suspicion about ourselves +1.
 */
export class Awareness {
  private value = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`awareness max must be >= 1, got ${max}`);
  }

  get score(): number {
    return this.value;
  }

  applyDelta(delta: number): number {
    this.value = clampScore(this.value + delta, this.max);
    return this.value;
  }

  /** The timeout scaled by (score + 1). */
  scale(timeoutMs: number): number {
    return scaleByHealth(timeoutMs, this.value);
  }
}

export const clampScore = (score: number, max: number): number => Math.min(Math.max(score, 0), max - 1);

export const scaleByHealth = (timeoutMs: number, score: number): number => timeoutMs * (score + 1);
