/**
 * Broadcasts waiting to be piggybacked (memberlist's TransmitLimitedQueue, queue.go).
 *
 * Each broadcast is kept already encoded, with the number of times it has been sent. Packets take
 * the least-sent first, newest first among equals, so fresh news spreads before old news is
 * repeated; after `limit` sends (retransmitMult * ceil(log10(n + 1))) a broadcast is dropped:
 * by then it has reached every member with high probability (SWIM section 4.1, infection-style
 * dissemination). A newer broadcast about the same subject (same key) replaces the queued one.
 */
interface Item {
  key: string;
  bytes: Uint8Array;
  transmits: number;
  live: boolean;
}

export class BroadcastQueue {
  /** buckets[t] holds the items sent t times, oldest first. */
  private buckets: Item[][] = [[]];
  private readonly byKey = new Map<string, Item>();

  /** Live broadcasts waiting. */
  get size(): number {
    return this.byKey.size;
  }

  /** Queue a broadcast; it invalidates any queued broadcast with the same key. */
  enqueue(key: string, bytes: Uint8Array): void {
    const old = this.byKey.get(key);
    if (old !== undefined) old.live = false;
    const item: Item = { key, bytes, transmits: 0, live: true };
    this.byKey.set(key, item);
    (this.buckets[0] as Item[]).push(item);
  }

  /** Whether a broadcast with this key is queued (tests, and avoiding duplicate work). */
  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /**
   * Take broadcasts whose encoded sizes add up to at most `budget` bytes, counting one transmit on
   * each and dropping those that reach `limit`.
   */
  take(budget: number, limit: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.byKey.size === 0) return out;
    let remaining = budget;
    let misses = 0;
    const moved: Item[] = [];
    for (let t = 0; t < this.buckets.length && remaining > 0 && misses < MAX_MISSES; t++) {
      const bucket = this.buckets[t] as Item[];
      if (bucket.length === 0) continue;
      let removedAll = true; // every index >= cut was removed
      let cut = bucket.length;
      let removedSome = false;
      for (let i = bucket.length - 1; i >= 0 && remaining > 0 && misses < MAX_MISSES; i--) {
        const item = bucket[i] as Item;
        let remove = false;
        if (!item.live) {
          remove = true;
        } else if (item.bytes.length <= remaining) {
          out.push(item.bytes);
          remaining -= item.bytes.length;
          item.transmits = t + 1;
          if (item.transmits >= limit) {
            item.live = false;
            this.byKey.delete(item.key);
          } else {
            moved.push(item);
          }
          remove = true;
        } else {
          misses++;
        }
        if (remove) {
          removedSome = true;
          if (removedAll) cut = i;
        } else {
          removedAll = false;
        }
        if (remove && !removedAll) bucket[i] = DEAD;
      }
      if (!removedSome) continue;
      bucket.length = cut;
      if (bucket.includes(DEAD)) this.buckets[t] = bucket.filter((x) => x !== DEAD);
    }
    // Taken newest first; appended oldest first so each bucket stays in age order.
    for (let i = moved.length - 1; i >= 0; i--) {
      const item = moved[i] as Item;
      this.bucketFor(item.transmits).push(item);
    }
    return out;
  }

  /** Drop the most-sent (then oldest) broadcasts until at most `max` remain. Returns how many. */
  prune(max: number): number {
    let dropped = 0;
    for (let t = this.buckets.length - 1; t >= 0 && this.byKey.size > max; t--) {
      const bucket = this.buckets[t] as Item[];
      let i = 0;
      for (; i < bucket.length && this.byKey.size > max; i++) {
        const item = bucket[i] as Item;
        if (!item.live) continue;
        item.live = false;
        this.byKey.delete(item.key);
        dropped++;
      }
      this.buckets[t] = bucket.slice(i);
    }
    return dropped;
  }

  private bucketFor(transmits: number): Item[] {
    while (this.buckets.length <= transmits) this.buckets.push([]);
    return this.buckets[transmits] as Item[];
  }
}

/** Stop scanning after this many broadcasts too large for what is left (keeps take() O(packet)). */
const MAX_MISSES = 32;

/** Placeholder for an item removed from the middle of a bucket, filtered out after the scan. */
const DEAD: Item = { key: "", bytes: new Uint8Array(0), transmits: 0, live: false };
