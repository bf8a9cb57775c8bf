/**
 * A binary min-heap of events ordered by time, then by insertion (so events due at the same
 * millisecond run in the order they were scheduled: a run is a pure function of its seed).
 */
export interface HeapEvent {
  at: number;
  seq: number;
}

export class EventHeap<E extends HeapEvent> {
  private readonly items: E[] = [];

  get size(): number {
    return this.items.length;
  }

  peekTime(): number {
    return this.items.length === 0 ? Number.POSITIVE_INFINITY : (this.items[0] as E).at;
  }

  push(e: E): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = a[parent] as E;
      if (!before(e, p)) break;
      a[i] = p;
      i = parent;
    }
    a[i] = e;
  }

  pop(): E | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    let i = 0;
    const n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && before(a[r] as E, a[l] as E)) c = r;
      if (!before(a[c] as E, last)) break;
      a[i] = a[c] as E;
      i = c;
    }
    a[i] = last;
    return top;
  }
}

const before = (x: HeapEvent, y: HeapEvent): boolean => x.at < y.at || (x.at === y.at && x.seq < y.seq);
