/**
 * What members report about their deployments, indexed by hash for `whoRuns`, and the version
 * order that makes stale or replayed reports harmless.
 */
import type { HashReport, MemberAppState } from "../../../model/reports.ts";
import type { StateVersion } from "../types.ts";

/** Lexicographic order on (boot, seq): -1, 0 or 1. */
export const compareVersion = (a: StateVersion, b: StateVersion): number => {
  if (a.boot !== b.boot) return a.boot < b.boot ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
};

/** Whether `candidate` should replace `held` (strictly newer; anything replaces nothing). */
export const isNewer = (candidate: StateVersion, held: StateVersion | null): boolean =>
  held === null || compareVersion(candidate, held) > 0;

export const cloneAppState = (s: MemberAppState): MemberAppState => {
  const hashes = s.hashes.map((h) => ({ ...h, refs: [...h.refs] }));
  return s.ingress === undefined ? { hashes } : { hashes, ingress: s.ingress };
};

/** hash -> member name -> that member's report. Kept in step with every state replacement. */
export class HashIndex {
  private readonly byHash = new Map<string, Map<string, HashReport>>();

  replace(member: string, previous: MemberAppState | null, next: MemberAppState | null): void {
    if (previous !== null) {
      for (const h of previous.hashes) {
        const holders = this.byHash.get(h.hash);
        if (holders === undefined) continue;
        holders.delete(member);
        if (holders.size === 0) this.byHash.delete(h.hash);
      }
    }
    if (next !== null) {
      for (const h of next.hashes) {
        let holders = this.byHash.get(h.hash);
        if (holders === undefined) {
          holders = new Map();
          this.byHash.set(h.hash, holders);
        }
        holders.set(member, h);
      }
    }
  }

  holders(hash: string): ReadonlyMap<string, HashReport> | undefined {
    return this.byHash.get(hash);
  }
}
