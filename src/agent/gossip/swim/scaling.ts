/**
 * How memberlist scales its timers and limits with the cluster size (memberlist util.go). Pure
 * functions of n, the number of members known (memberlist's estNumNodes, dead ones included until
 * they are reaped), so they can be table-tested against memberlist's own figures.
 */

/**
 * Suspicion timeout before Lifeguard's acceleration: SuspicionMult * max(1, log10(n)) * interval.
 * memberlist keeps three decimals of the scale (integer Duration maths); so do we.
 */
export const suspicionTimeout = (suspicionMult: number, n: number, intervalMs: number): number => {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return (suspicionMult * Math.floor(nodeScale * 1000) * intervalMs) / 1000;
};

/** How many times a broadcast is piggybacked before it is dropped: mult * ceil(log10(n + 1)). */
export const retransmitLimit = (retransmitMult: number, n: number): number =>
  retransmitMult * Math.ceil(Math.log10(n + 1));

/** memberlist's pushPullScaleThreshold: below this many members the interval is not stretched. */
export const PUSH_PULL_SCALE_THRESHOLD = 32;

/**
 * Push-pull interval stretched with the cluster so the total full-state traffic grows slowly:
 * doubles for every doubling of n above 32 members (memberlist pushPullScale).
 */
export const pushPullScale = (intervalMs: number, n: number): number => {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return intervalMs;
  const multiplier = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return multiplier * intervalMs;
};
