import { type Deployment, LIVE_STATES } from "../../model/deployment.ts";
import type { HashReport } from "../../model/reports.ts";
import type { RequestCounts } from "../../model/request-stats.ts";
import type { PendingActivation } from "../lifecycle/activator.ts";
import type { StateStore } from "../state/store.ts";

/** Per-hash load on this host: requests in flight through the ingress, and live holds. */
export interface LoadSource {
  inFlight(hash: string): number;
  holds(hash: string): number;
  /** what the ingress answered for the hash, cumulative (request-stats.ts) */
  counts?(hash: string): RequestCounts | undefined;
  /** until when clients a sticky cookie pinned to the hash may come back (ingress/sticky.ts) */
  stickyUntil?(hash: string, now: number): number | undefined;
  /** the retirer's reason for the hash's state, if it has one */
  why?(hash: string): string | undefined;
}

/** A reason as the report carries it: one line, at most REPORT_WHY_CHARS. */
export const REPORT_WHY_CHARS = 160;

/** How long, and how many, hashes the retirer retired here stay in the report. */
export const RECENTLY_RETIRED_MS = 10 * 60_000;
export const RECENTLY_RETIRED_MAX = 32;

/**
 * Deployments this host reports to its peers: everything but retired ones, except the last few
 * the retirer retired in the last 10 minutes. Those tell a member that missed the alias (down or
 * cut off while it pointed there, with a concurrent write from its side winning afterwards, so no
 * alias record names the hash) that its copy was wanted once, so it retires too. Reports in state
 * retired are not routed to (cluster.ts whoRuns) and block nothing (the planner's RUNNING).
 */
export function reportedRows(rows: readonly Deployment[], now: number): Deployment[] {
  const byRetirer = rows.filter((d) => d.state === "retired" && !d.retiredByHand);
  return [
    ...rows.filter((d) => d.state !== "retired"),
    ...recentlyRetired(byRetirer, (d) => d.updatedAt, now),
  ];
}

/** Of hashes the retirer retired, those still reported: the newest RECENTLY_RETIRED_MAX of the window. */
export function recentlyRetired<T>(retired: readonly T[], retiredAt: (t: T) => number, now: number): T[] {
  return retired
    .filter((t) => now - retiredAt(t) < RECENTLY_RETIRED_MS)
    .sort((a, b) => retiredAt(b) - retiredAt(a))
    .slice(0, RECENTLY_RETIRED_MAX);
}

/**
 * This host's report: what every peer's retirement planner and ingress read about it. An
 * activation under way that has read its references and whose hash is not live here yet is
 * reported "fetching" with them: a dependent being installed, which keeps what it references
 * from retiring anywhere (the ingress never routes to it).
 */
export function localReport(
  store: StateStore,
  load: LoadSource,
  activations: readonly PendingActivation[] = [],
  now = Date.now(),
): HashReport[] {
  const report = new Map<string, HashReport>();
  for (const d of reportedRows(store.list(), now)) {
    const row: HashReport = {
      hash: d.hash,
      state: d.state,
      inFlight: load.inFlight(d.hash),
      holds: load.holds(d.hash),
      refs: d.refs,
      service: d.name,
    };
    const why = d.state === "failed" && d.error !== null ? d.error : load.why?.(d.hash);
    if (why !== undefined) row.why = oneLine(why);
    const counts = load.counts?.(d.hash);
    if (counts !== undefined) row.counts = counts;
    const sticky = load.stickyUntil?.(d.hash, now);
    if (sticky !== undefined) row.stickyUntil = sticky;
    report.set(d.hash, row);
  }
  for (const a of activations) {
    const row = report.get(a.hash);
    if (a.refs === null || (row !== undefined && LIVE_STATES.has(row.state))) continue;
    report.set(a.hash, { hash: a.hash, state: "fetching", inFlight: 0, holds: 0, refs: a.refs });
  }
  return [...report.values()];
}

function oneLine(text: string): string {
  const line = text.split("\n", 1)[0]?.trim() ?? "";
  return line.length > REPORT_WHY_CHARS ? `${line.slice(0, REPORT_WHY_CHARS - 3)}...` : line;
}
