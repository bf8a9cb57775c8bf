/** Milliseconds since the epoch; injected so that leases and idle times are testable. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
