import { BUCKETS, bucketIndex, emptyCounts, type RequestCounts } from "../../model/request-stats.ts";

/**
 * What the ingress counts per hash for progressive delivery (src/model/request-stats.ts): requests,
 * 5xx answers of the service, upstream failures and the latency histogram, per hash and per alias the
 * request came through. The ingress calls record() once per counted request, on its hot path: one
 * Map lookup, a few increments in a preallocated Float64Array, one Math.log2; nothing is allocated
 * unless the hash or alias is new.
 *
 * Counts are cumulative since the hash was first counted (its `since`, wall-clock ms), like
 * Prometheus counters. forget() drops a retired hash; counted again later, it starts over with a new
 * `since`, which readers take as a reset (countsDelta).
 *
 * Sliding windows: tick() (the ingress's sweep calls it every 250 ms) keeps, per hash, a copy of its
 * counts at the start of each 10-second slot for the last minute, so recent() answers "the last
 * 30 s" by one subtraction, and the per-request path does not touch any window.
 */

/** Row layout: the counters, the sum of latencies (for the Prometheus histogram's _sum), the buckets. */
const REQUESTS = 0;
const ERRORS = 1;
const FAILURES = 2;
const SUM_MS = 3;
const B0 = 4;
const ROW = B0 + BUCKETS;

export const SLOT_MS = 10_000;
/** slots kept: a window of up to 60 s reads the copy taken 5 slots before the current one */
const SLOTS = 7;
export const MAX_WINDOW_MS = (SLOTS - 1) * SLOT_MS;

/** Label of the row that takes the aliases past maxAliasesPerHash (alias names are DNS labels: no clash). */
export const OTHER_ALIASES = "(other)";

export interface RequestStatsOptions {
  /** distinct hashes counted; requests for more are dropped (and counted in `dropped`) */
  maxHashes?: number;
  /** distinct aliases per hash; requests through more are counted under OTHER_ALIASES */
  maxAliasesPerHash?: number;
  /** wall clock (ms), for `since` and the slots */
  clock?: () => number;
}

/** One (hash, alias) row as /metrics shows it. */
export interface RequestStatsRow {
  hash: string;
  /** null: reached by its hash (Host or /h/ path) */
  alias: string | null;
  counts: RequestCounts;
  /** sum of the latencies in the histogram, ms */
  sumMs: number;
}

class HashRows {
  direct: Float64Array | null = null;
  readonly aliases: string[] = [];
  readonly aliasRows: Float64Array[] = [];
  other: Float64Array | null = null;
  /** copies of the summed row at the start of each slot, and the slot each was taken in */
  readonly marks: (Float64Array | null)[] = new Array(SLOTS).fill(null);
  readonly markSlots = new Float64Array(SLOTS).fill(-1);

  readonly sinceSlot: number;

  constructor(
    readonly hash: string,
    readonly since: number,
  ) {
    this.sinceSlot = Math.floor(since / SLOT_MS);
  }

  row(alias: string | null, maxAliases: number): Float64Array {
    if (alias === null) {
      if (this.direct === null) this.direct = new Float64Array(ROW);
      return this.direct;
    }
    const { aliases } = this;
    for (let i = 0; i < aliases.length; i++)
      if (aliases[i] === alias) return this.aliasRows[i] as Float64Array;
    if (aliases.length >= maxAliases) {
      if (this.other === null) this.other = new Float64Array(ROW);
      return this.other;
    }
    const row = new Float64Array(ROW);
    aliases.push(alias);
    this.aliasRows.push(row);
    return row;
  }

  *rows(): Generator<[string | null, Float64Array]> {
    if (this.direct !== null) yield [null, this.direct];
    for (let i = 0; i < this.aliases.length; i++)
      yield [this.aliases[i] as string, this.aliasRows[i] as Float64Array];
    if (this.other !== null) yield [OTHER_ALIASES, this.other];
  }

  /** the sum of its rows, into `into` */
  sum(into: Float64Array): Float64Array {
    into.fill(0);
    for (const [, row] of this.rows()) for (let i = 0; i < ROW; i++) (into[i] as number) += row[i] as number;
    return into;
  }
}

export class RequestStats {
  private readonly byHash = new Map<string, HashRows>();
  private readonly maxHashes: number;
  private readonly maxAliases: number;
  private readonly clock: () => number;
  /** the slot of the last tick */
  private slot = -1;
  /** requests not counted because maxHashes distinct hashes were counted already */
  dropped = 0;

  constructor(options: RequestStatsOptions = {}) {
    this.maxHashes = options.maxHashes ?? 4096;
    this.maxAliases = options.maxAliasesPerHash ?? 8;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * One request's outcome: the service's status (its response head arrived latencyMs after the
   * request was routed), or "failure" when the ingress answered 502/503/504 for an upstream problem
   * (no latency: it stays out of the histogram).
   */
  record(hash: string, alias: string | null, status: number | "failure", latencyMs: number): void {
    let rows = this.byHash.get(hash);
    if (rows === undefined) {
      if (this.byHash.size >= this.maxHashes) {
        this.dropped++;
        return;
      }
      rows = new HashRows(hash, Math.floor(this.clock()));
      this.byHash.set(hash, rows);
    }
    const row = alias === null && rows.direct !== null ? rows.direct : rows.row(alias, this.maxAliases);
    (row[REQUESTS] as number)++;
    if (status === "failure") {
      (row[FAILURES] as number)++;
      return;
    }
    if (status >= 500) (row[ERRORS] as number)++;
    if (latencyMs > 0) (row[SUM_MS] as number) += latencyMs;
    (row[B0 + bucketIndex(latencyMs)] as number)++;
  }

  /** The hash's counts summed over the aliases it was reached by (for this member's gossip report). */
  countsOf(hash: string): RequestCounts | undefined {
    const rows = this.byHash.get(hash);
    return rows && toCounts(rows.since, rows.sum(new Float64Array(ROW)));
  }

  /**
   * The hash's counts over the last windowMs (at most MAX_WINDOW_MS), at slot granularity: from the
   * start of the slot (windowMs / SLOT_MS, rounded up, - 1) slots before the current one, so the
   * window is at most windowMs long and at least SLOT_MS shorter. A hash first counted within it
   * counts whole. `since` is the hash's.
   */
  recent(hash: string, windowMs: number): RequestCounts | undefined {
    const rows = this.byHash.get(hash);
    if (rows === undefined) return undefined;
    this.tick(this.clock());
    const now = rows.sum(new Float64Array(ROW));
    const back = Math.min(SLOTS - 2, Math.max(0, Math.ceil(windowMs / SLOT_MS) - 1));
    const first = this.slot - back;
    // the copy taken at the start of the window's first slot; none if the hash was first counted
    // after it (then all its counts are in the window); if ticks were missed, the oldest one since
    let base: Float64Array | null = null;
    let baseSlot = Number.POSITIVE_INFINITY;
    for (let i = 0; i < SLOTS; i++) {
      const at = rows.markSlots[i] as number;
      if (at >= first && at < baseSlot) {
        baseSlot = at;
        base = rows.marks[i] as Float64Array;
      }
    }
    if (baseSlot !== first && rows.sinceSlot >= first) base = null;
    if (base !== null) for (let i = 0; i < ROW; i++) (now[i] as number) -= base[i] as number;
    return toCounts(rows.since, now);
  }

  /**
   * Advances the windows to nowMs (wall clock): at the first tick of a slot, every hash's counts are
   * copied into its ring. Cheap between slots (one division); the ingress's sweep calls it.
   */
  tick(nowMs: number): void {
    const slot = Math.floor(nowMs / SLOT_MS);
    if (slot <= this.slot) return;
    this.slot = slot;
    const at = slot % SLOTS;
    for (const rows of this.byHash.values()) {
      rows.marks[at] = rows.sum(rows.marks[at] ?? new Float64Array(ROW));
      rows.markSlots[at] = slot;
    }
  }

  /** Drops a retired hash's counts. */
  forget(hash: string): void {
    this.byHash.delete(hash);
  }

  hashes(): IterableIterator<string> {
    return this.byHash.keys();
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Every (hash, alias) row, for /metrics. */
  *rows(): Generator<RequestStatsRow> {
    for (const rows of this.byHash.values()) {
      for (const [alias, row] of rows.rows())
        yield { hash: rows.hash, alias, counts: toCounts(rows.since, row), sumMs: row[SUM_MS] as number };
    }
  }
}

function toCounts(since: number, row: Float64Array): RequestCounts {
  const counts = emptyCounts(since);
  counts.requests = row[REQUESTS] as number;
  counts.errors = row[ERRORS] as number;
  counts.failures = row[FAILURES] as number;
  for (let i = 0; i < BUCKETS; i++) counts.buckets[i] = row[B0 + i] as number;
  return counts;
}
