/**
 * The record of everything that can keep one member from knowing another's current facts: agent
 * crashes (a crashed agent publishes nothing and forgets its view) and partitions. Ground-truth
 * violations are excused only by these, or by being younger than gossip can carry a fact.
 */

interface Interval {
  from: number;
  /** null while it lasts */
  to: number | null;
}

interface PartitionInterval extends Interval {
  /** group per member index; members in different groups cannot talk */
  group: number[];
}

export class Disruptions {
  private readonly crashes: Interval[][];
  private readonly partitions: PartitionInterval[] = [];

  constructor(size: number) {
    this.crashes = Array.from({ length: size }, () => []);
  }

  crashed(member: number, at: number): void {
    this.crashes[member]?.push({ from: at, to: null });
  }

  restarted(member: number, at: number): void {
    const last = this.crashes[member]?.at(-1);
    if (last !== undefined && last.to === null) last.to = at;
  }

  partitioned(group: readonly number[], at: number): void {
    this.healed(at);
    this.partitions.push({ from: at, to: null, group: [...group] });
  }

  healed(at: number): void {
    const last = this.partitions.at(-1);
    if (last !== undefined && last.to === null) last.to = at;
  }

  isCrashed(member: number): boolean {
    const last = this.crashes[member]?.at(-1);
    return last !== undefined && last.to === null;
  }

  /** Whether `member`'s agent was down at any time in (now - windowMs, now] (a restart starts from an empty view). */
  crashedWithin(member: number, now: number, windowMs: number): boolean {
    return (this.crashes[member] ?? []).some((i) => i.to === null || i.to > now - windowMs);
  }

  /** Whether a partition separated `a` and `b` at any time in (now - windowMs, now]. */
  partitionedWithin(a: number, b: number, now: number, windowMs: number): boolean {
    return this.partitions.some((p) => (p.to === null || p.to > now - windowMs) && p.group[a] !== p.group[b]);
  }

  /**
   * The longest stretch within [from, to] during which `a` and `b` were both up and on the same
   * side of every partition: time enough for gossip to carry a fact from one to the other?
   */
  longestConnected(a: number, b: number, from: number, to: number): number {
    const cuts: [number, number][] = [];
    for (const m of a === b ? [a] : [a, b])
      for (const i of this.crashes[m] ?? []) cuts.push([i.from, i.to ?? to]);
    for (const p of this.partitions) if (p.group[a] !== p.group[b]) cuts.push([p.from, p.to ?? to]);
    cuts.sort((x, y) => x[0] - y[0]);
    let longest = 0;
    let start = from;
    for (const [cFrom, cTo] of cuts) {
      if (cTo <= start) continue;
      if (cFrom >= to) break;
      longest = Math.max(longest, cFrom - start);
      start = Math.max(start, cTo);
    }
    return Math.max(longest, to - start);
  }

  /** Whether any member crashed, or any partition was up, at any time in (now - windowMs, now]. */
  anyWithin(now: number, windowMs: number): boolean {
    const recent = (i: Interval) => i.to === null || i.to > now - windowMs;
    return this.partitions.some(recent) || this.crashes.some((c) => c.some(recent));
  }

  /** Whether any crash or partition is under way. */
  get calm(): boolean {
    return this.partitions.at(-1)?.to !== null && this.crashes.every((c) => c.at(-1)?.to !== null);
  }

  /** When the last crash or partition ended (0 if none ever happened). */
  lastEnd(): number {
    let end = 0;
    for (const c of this.crashes) for (const i of c) end = Math.max(end, i.to ?? Number.POSITIVE_INFINITY);
    for (const p of this.partitions) end = Math.max(end, p.to ?? Number.POSITIVE_INFINITY);
    return end;
  }
}
