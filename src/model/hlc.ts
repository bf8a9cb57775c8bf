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

/**
 * The logical part is a uint32 on the wire (codec-fields.ts LIMITS.counter). A remote timestamp
 * at that bound would push ours past it and make every later write of ours undecodable, so a
 * logical count past it carries into the wall instead: (wall + 1, 0) still orders after
 * (wall, max). Real traffic never gets there (it counts events within one millisecond).
 */
export const HLC_MAX_LOGICAL = 0xffff_ffff;

const carry = (wall: number, logical: number): Hlc =>
  logical > HLC_MAX_LOGICAL ? { wall: wall + 1, logical: 0 } : { wall, logical };

/** Total order on timestamps: -1, 0 or 1. */
export const compareHlc = (a: Hlc, b: Hlc): number => {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return 0;
};

/** A local event (an alias write, or a send): the paper's "send or local event" rule. */
export const hlcTick = (clock: Hlc, physicalMs: number): Hlc => {
  if (physicalMs > clock.wall) return { wall: physicalMs, logical: 0 };
  return carry(clock.wall, clock.logical + 1);
};

/** Merge a timestamp received from a peer: the paper's "receive event of message m" rule. */
export const hlcReceive = (clock: Hlc, remote: Hlc, physicalMs: number): Hlc => {
  const wall = Math.max(clock.wall, remote.wall, physicalMs);
  if (wall === clock.wall && wall === remote.wall) {
    return carry(wall, Math.max(clock.logical, remote.logical) + 1);
  }
  if (wall === clock.wall) return carry(wall, clock.logical + 1);
  if (wall === remote.wall) return carry(wall, remote.logical + 1);
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
