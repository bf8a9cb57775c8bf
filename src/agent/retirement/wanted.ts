import type { Root } from "../../model/roots.ts";

/**
 * Which hashes are wanted: the roots (aliases, pins, retention policy) and, transitively, every
 * service hash a wanted hash references. References are Nix runtime references between service
 * closures, so they are facts about the hashes themselves and can be learned from any member.
 */
/** hash -> why it is wanted. Breadth-first, so each reason names the shortest chain. */
export function wantedHashes(
  roots: Iterable<Root>,
  refsOf: (hash: string) => Iterable<string>,
): Map<string, string> {
  const wanted = new Map<string, string>();
  const queue: string[] = [];
  for (const root of roots) {
    if (wanted.has(root.hash)) continue;
    wanted.set(root.hash, root.reason);
    queue.push(root.hash);
  }
  for (let i = 0; i < queue.length; i++) {
    const hash = queue[i] as string;
    for (const ref of refsOf(hash)) {
      if (ref === hash || wanted.has(ref)) continue;
      wanted.set(ref, `referenced by ${hash}`);
      queue.push(ref);
    }
  }
  return wanted;
}

/** What `stickyRoots` reads of a member: its name and, per hash, until when sticky clients may come back. */
export interface StickyReports {
  name: string;
  hashes: readonly { hash: string; stickyUntil?: number | undefined }[];
}

/**
 * Sticky use as roots: a hash that any member (this host included, whatever its status: clients
 * pinned by a cookie come back through any ingress) reports with `stickyUntil` after `now` is
 * wanted until then, with the latest such time and the member that reports it. Once that time has
 * passed the hash is unwanted again and drains and retires as any other. Sorted by hash, so the
 * roots (and the reasons they give) do not depend on the order members are listed in.
 */
export function stickyRoots(members: readonly StickyReports[], now: number): Root[] {
  const latest = new Map<string, { until: number; member: string }>();
  for (const m of members)
    for (const r of m.hashes) {
      const until = r.stickyUntil;
      if (until === undefined || !(until > now)) continue;
      const held = latest.get(r.hash);
      if (held === undefined || until > held.until) latest.set(r.hash, { until, member: m.name });
    }
  return [...latest]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([hash, { until, member }]) => ({
      hash,
      reason: `sticky clients until ${clockOf(until)} UTC (${member})`,
    }));
}

/** HH:MM:SS (UTC) of a wall-clock time in ms. */
const clockOf = (ms: number): string => new Date(ms).toISOString().slice(11, 19);
