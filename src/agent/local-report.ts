import type { PendingActivation } from "./activator.ts";
import type { HashReport } from "./gossip/types.ts";
import { type Deployment, LIVE_STATES } from "./state/deployment.ts";
import type { StateStore } from "./state/store.ts";

/** Per-hash load on this host: requests in flight through the ingress, and live holds. */
export interface LoadSource {
  inFlight(hash: string): number;
  holds(hash: string): number;
}

export const NO_LOAD: LoadSource = { inFlight: () => 0, holds: () => 0 };

/** Deployments this host reports to its peers: everything but retired ones. */
export function reportable(d: Deployment): boolean {
  return d.state !== "retired";
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
): HashReport[] {
  const rows = store.list();
  const report = new Map<string, HashReport>();
  for (const d of rows.filter(reportable))
    report.set(d.hash, {
      hash: d.hash,
      state: d.state,
      inFlight: load.inFlight(d.hash),
      holds: load.holds(d.hash),
      refs: d.refs,
    });
  for (const a of activations) {
    const row = report.get(a.hash);
    if (a.refs === null || (row !== undefined && LIVE_STATES.has(row.state))) continue;
    report.set(a.hash, { hash: a.hash, state: "fetching", inFlight: 0, holds: 0, refs: a.refs });
  }
  return [...report.values()];
}
