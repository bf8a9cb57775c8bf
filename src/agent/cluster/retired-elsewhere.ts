import { LIVE_STATES } from "../../model/deployment.ts";
import type { HashReport } from "../../model/reports.ts";
import type { RetiredElsewhere, StateStore } from "../state/store.ts";

/** Most retirements of other members remembered; the oldest are forgotten first. */
export const RETIRED_ELSEWHERE_MAX = 10_000;
/** How often the reports that changed are read (their changes are coalesced until then). */
export const RETIRED_ELSEWHERE_FLUSH_MS = 2000;

/**
 * Remembers the hashes other members retired, so that the ingress answers 410 for them here too
 * (gone-hashes.ts). A member reports what its retirer retired for only 10 minutes (the last 32,
 * local-report.ts), so what is heard goes into this agent's database (retired_elsewhere): it
 * outlives the report and a restart. A hash some member reports live again is forgotten. Gossip
 * says which member's report changed; reports are read at most every RETIRED_ELSEWHERE_FLUSH_MS,
 * so a member whose in-flight counts change twice a second costs one read per flush, and only
 * new facts are written (one transaction per flush).
 *
 * The time kept is when this agent first heard of the retirement (reports carry none): for members
 * that were up, within a second or two of it; for one that joined later, up to 10 minutes after.
 * Retirements by hand (`hashd deactivate`) are not reported, so they are 410 only where they were
 * made.
 */
export class RetiredElsewhereLog {
  private readonly known: Set<string>;
  private readonly dirty = new Set<string>();

  constructor(
    private readonly store: StateStore,
    private readonly reportOf: (member: string) => readonly HashReport[] | undefined,
    private readonly max = RETIRED_ELSEWHERE_MAX,
  ) {
    this.known = new Set(store.retiredElsewhereHashes());
  }

  /** A member's report changed (gossip's state-changed): it is read at the next flush. */
  changed(member: string): void {
    this.dirty.add(member);
  }

  flush(now: number): void {
    if (this.dirty.size === 0) return;
    const heard = new Map<string, RetiredElsewhere>();
    const liveAgain = new Set<string>();
    for (const member of this.dirty) {
      for (const r of this.reportOf(member) ?? []) {
        if (r.state === "retired") {
          if (!this.known.has(r.hash) && !heard.has(r.hash))
            heard.set(r.hash, { hash: r.hash, member, retiredAt: now });
        } else if (LIVE_STATES.has(r.state) && (this.known.has(r.hash) || heard.has(r.hash))) {
          liveAgain.add(r.hash);
        }
      }
    }
    this.dirty.clear();
    if (heard.size === 0 && liveAgain.size === 0) return;
    const evicted = this.store.noteRetiredElsewhere([...heard.values()], [...liveAgain], this.max);
    for (const h of heard.keys()) this.known.add(h);
    for (const h of liveAgain) this.known.delete(h);
    for (const h of evicted) this.known.delete(h);
  }
}
