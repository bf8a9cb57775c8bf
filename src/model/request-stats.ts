/**
 * What an ingress counts per hash: requests, errors and a latency histogram, cumulative since the
 * counting began (like a Prometheus counter). Readers (the rollout driver, /metrics, the status
 * page) take the difference of two readings for a window, and a changed `since` means a reset.
 */

/**
 * Upper bounds (ms) of the latency buckets: 0.25 ms times powers of sqrt(2) up to about 131 s
 * (39 bounds), then +Inf. Neighbouring bounds differ by 41%, so p50 and p99 read by linear
 * interpolation inside a bucket are off by less than that, far less than the 1.5x a canary's p99
 * is compared against.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = Array.from(
  { length: 39 },
  (_, k) => 0.25 * Math.SQRT2 ** k,
);

export interface RequestCounts {
  /** wall-clock ms at which counting began (agent start); a different value means a reset */
  since: number;
  requests: number;
  /** answers of the service with a status of 500 or more */
  errors: number;
  /** upstream failures: refused, reset, timed out, malformed head (the ingress answered 502/504) */
  failures: number;
  /**
   * requests per latency bucket (time until the service's response head arrived):
   * buckets[i] counts latencies <= LATENCY_BOUNDS_MS[i] and above the bound before; the last entry
   * (index LATENCY_BOUNDS_MS.length) counts the rest. Dense, length LATENCY_BOUNDS_MS.length + 1.
   */
  buckets: number[];
}

/** Index of the +Inf bucket; buckets has BUCKETS entries. */
export const INF_BUCKET = LATENCY_BOUNDS_MS.length;
export const BUCKETS = LATENCY_BOUNDS_MS.length + 1;

/** Zero counts that began at `since`. */
export function emptyCounts(since: number): RequestCounts {
  return { since, requests: 0, errors: 0, failures: 0, buckets: new Array<number>(BUCKETS).fill(0) };
}

/**
 * The bucket of a latency: the first i with ms <= LATENCY_BOUNDS_MS[i], or INF_BUCKET. Called per
 * request: one Math.log2 and at most two comparisons that correct its rounding, no loop over the
 * bounds. NaN and negative values land in bucket 0 (a clock that went backwards is not a slow
 * request).
 */
export function bucketIndex(ms: number): number {
  if (!(ms > 0.25)) return 0;
  // bound k = 0.25 * 2^(k/2), so the bucket is ceil(2 * log2(ms / 0.25)) = ceil(2 * log2(ms * 4))
  let k = Math.ceil(2 * Math.log2(ms * 4));
  if (k >= INF_BUCKET) {
    k = INF_BUCKET;
    if (ms <= (LATENCY_BOUNDS_MS[INF_BUCKET - 1] as number)) k = INF_BUCKET - 1;
    return k;
  }
  if (ms > (LATENCY_BOUNDS_MS[k] as number)) return k + 1;
  if (k > 0 && ms <= (LATENCY_BOUNDS_MS[k - 1] as number)) return k - 1;
  return k;
}

/** The sum of two members' counts (or two aliases'); `since` is a's and means nothing for a sum. */
export function addCounts(a: RequestCounts, b: RequestCounts): RequestCounts {
  const buckets = new Array<number>(BUCKETS);
  for (let i = 0; i < BUCKETS; i++) buckets[i] = (a.buckets[i] ?? 0) + (b.buckets[i] ?? 0);
  return {
    since: a.since,
    requests: a.requests + b.requests,
    errors: a.errors + b.errors,
    failures: a.failures + b.failures,
    buckets,
  };
}

/** The sum of a list of counts (members, aliases); undefined for an empty list. */
export function sumCounts(list: readonly RequestCounts[]): RequestCounts | undefined {
  let sum: RequestCounts | undefined;
  for (const counts of list)
    sum = sum === undefined ? addCounts(emptyCounts(counts.since), counts) : addCounts(sum, counts);
  return sum;
}

/**
 * What happened between two readings of one member's counts: their difference. A reset (another
 * `since`, or any counter lower than before: the member forgot the hash and counted it again) or no
 * earlier reading gives `now` itself, as Prometheus's rate() takes a counter that went down.
 */
export function countsDelta(now: RequestCounts, before: RequestCounts | undefined): RequestCounts {
  if (before === undefined || before.since !== now.since) return now;
  const delta: RequestCounts = {
    since: now.since,
    requests: now.requests - before.requests,
    errors: now.errors - before.errors,
    failures: now.failures - before.failures,
    buckets: new Array<number>(BUCKETS),
  };
  let reset = delta.requests < 0 || delta.errors < 0 || delta.failures < 0;
  for (let i = 0; i < BUCKETS; i++) {
    const d = (now.buckets[i] ?? 0) - (before.buckets[i] ?? 0);
    if (d < 0) reset = true;
    delta.buckets[i] = d;
  }
  return reset ? now : delta;
}

/** Requests that have a latency (answered by the service): the histogram's count. */
export function observedCount(counts: RequestCounts): number {
  let n = 0;
  for (const c of counts.buckets) n += c;
  return n;
}

/**
 * The q-quantile (0..1) of the latency in ms, as Prometheus's histogram_quantile: find the bucket
 * the rank falls in and interpolate linearly between its bounds (0 below the first). A rank in the
 * +Inf bucket gives the highest finite bound. undefined when no request has a latency.
 */
export function quantileMs(counts: RequestCounts, q: number): number | undefined {
  const total = observedCount(counts);
  if (total <= 0 || Number.isNaN(q)) return undefined;
  const rank = Math.min(1, Math.max(0, q)) * total;
  let below = 0;
  for (let i = 0; i < BUCKETS; i++) {
    const n = counts.buckets[i] ?? 0;
    if (n > 0 && below + n >= rank) {
      if (i === INF_BUCKET) return LATENCY_BOUNDS_MS[INF_BUCKET - 1];
      const lower = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] as number);
      const upper = LATENCY_BOUNDS_MS[i] as number;
      return lower + (upper - lower) * ((rank - below) / n);
    }
    below += n;
  }
  return LATENCY_BOUNDS_MS[INF_BUCKET - 1];
}

/**
 * The share of requests that went wrong: service answers of 500 or more plus upstream failures,
 * over all requests. undefined when there were none.
 */
export function errorRate(counts: RequestCounts): number | undefined {
  if (counts.requests <= 0) return undefined;
  return (counts.errors + counts.failures) / counts.requests;
}

/** Fields before the bucket pairs in the wire form. */
const HEAD = 4;

/**
 * The wire form, for gossip reports: [since, requests, errors, failures, index, count, index,
 * count, ...] with only the non-zero buckets, in ascending index order. Flat, so a report is no
 * deeper than its refs: a push-pull's nesting (messages.ts, codec.ts MAX_MESSAGE_DEPTH) stays 7.
 * A hash with a handful of distinct latencies costs a few dozen bytes in msgpack.
 */
export function encodeCounts(c: RequestCounts): number[] {
  const out = [c.since, c.requests, c.errors, c.failures];
  for (let i = 0; i < BUCKETS; i++) {
    const n = c.buckets[i] ?? 0;
    if (n !== 0) out.push(i, n);
  }
  return out;
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * The counts in a wire form from a peer, or null if anything is off: fewer than the four head
 * fields, a value that is not a safe non-negative integer, more errors and failures than requests,
 * more bucket pairs than buckets, an odd pair, an index out of range or not ascending (so no
 * duplicates), a zero or bad count, or more latencies than requests. Never throws, and looks at no
 * more than HEAD + 2 * BUCKETS entries whatever it is given.
 */
export function decodeCounts(v: unknown): RequestCounts | null {
  if (!Array.isArray(v) || v.length < HEAD || v.length > HEAD + 2 * BUCKETS || (v.length - HEAD) % 2 !== 0)
    return null;
  const [since, requests, errors, failures] = v as unknown[];
  if (!isCount(since) || !isCount(requests) || !isCount(errors) || !isCount(failures)) return null;
  if (errors + failures > requests) return null;
  const buckets = new Array<number>(BUCKETS).fill(0);
  let last = -1;
  let sum = 0;
  for (let p = HEAD; p < v.length; p += 2) {
    const index: unknown = v[p];
    const count: unknown = v[p + 1];
    if (!isCount(index) || index <= last || index >= BUCKETS) return null;
    if (!isCount(count) || count === 0) return null;
    sum += count;
    if (sum > requests) return null;
    buckets[index] = count;
    last = index;
  }
  return { since, requests, errors, failures, buckets };
}
