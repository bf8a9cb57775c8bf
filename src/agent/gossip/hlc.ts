/**
 * Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", OPODIS 2014).
 *
 * An HLC timestamp is (wall, logical): `wall` is the largest physical time (epoch ms) this member
 * has seen, from its own clock or from any message; `logical` counts events that share one `wall`.
 * It never goes backwards, stays within the clock skew of physical time, and respects causality:
 * a write made after seeing another write always compares greater. Alias writes are ordered by
 * it (last writer wins), with ties broken by the origin member's name.
 *
 * Pure functions: the physical time is an argument.
 */
export interface Hlc {
  wall: number;
  logical: number;
}

export const HLC_ZERO: Hlc = { wall: 0, logical: 0 };

/** Total order on timestamps: -1, 0 or 1. */
export const compareHlc = (a: Hlc, b: Hlc): number => {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return 0;
};

/** A local event (an alias write, or a send): the paper's "send or local event" rule. */
export const hlcTick = (clock: Hlc, physicalMs: number): Hlc => {
  if (physicalMs > clock.wall) return { wall: physicalMs, logical: 0 };
  return { wall: clock.wall, logical: clock.logical + 1 };
};

/** Merge a timestamp received from a peer: the paper's "receive event of message m" rule. */
export const hlcReceive = (clock: Hlc, remote: Hlc, physicalMs: number): Hlc => {
  const wall = Math.max(clock.wall, remote.wall, physicalMs);
  if (wall === clock.wall && wall === remote.wall) {
    return { wall, logical: Math.max(clock.logical, remote.logical) + 1 };
  }
  if (wall === clock.wall) return { wall, logical: clock.logical + 1 };
  if (wall === remote.wall) return { wall, logical: remote.logical + 1 };
  return { wall, logical: 0 };
};

/**
 * A remote timestamp further ahead of our physical clock than `maxDriftMs` is refused rather than
 * merged: one member with a clock set to next year would otherwise drag every clock with it and
 * win every alias write until real time caught up.
 */
export const hlcTooFarAhead = (remote: Hlc, physicalMs: number, maxDriftMs: number): boolean =>
  remote.wall - physicalMs > maxDriftMs;

/** Last-writer-wins order for alias records: HLC first, then origin name (a deterministic tie-break). */
export const compareWrites = (a: { hlc: Hlc; origin: string }, b: { hlc: Hlc; origin: string }): number => {
  const c = compareHlc(a.hlc, b.hlc);
  if (c !== 0) return c;
  if (a.origin === b.origin) return 0;
  return a.origin < b.origin ? -1 : 1;
};
