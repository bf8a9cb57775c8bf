import type { HashReport } from "./gossip/types.ts";
import type { Deployment } from "./state/deployment.ts";
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

/** This host's report: what every peer's retirement planner and ingress read about it. */
export function localReport(store: StateStore, load: LoadSource): HashReport[] {
  return store
    .list()
    .filter(reportable)
    .map((d) => ({
      hash: d.hash,
      state: d.state,
      inFlight: load.inFlight(d.hash),
      holds: load.holds(d.hash),
      refs: d.refs,
    }));
}
