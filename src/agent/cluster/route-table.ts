import { type Deployment, LIVE_STATES } from "../../model/deployment.ts";
import type { Route, RouteTable } from "../ingress/types.ts";
import type { Activator } from "../lifecycle/activator.ts";
import type { StateStore } from "../state/store.ts";
import type { Cluster } from "./cluster.ts";

/**
 * Where the ingress sends a hash: its local socket while the hash is live here (draining
 * included: a hash URL answers until the hash retires) and not starting or stopping, else a
 * member where it is ready (or, if none, idle: its socket wakes it), else its local socket if it
 * has one (the request waits for it), else nowhere. Local routes are a map kept current from state
 * changes; remote ones come from gossip's hash index on each miss.
 */
export class AgentRouteTable implements RouteTable {
  private readonly local = new Map<string, string>();
  private turn = 0;

  constructor(
    private readonly activator: Activator,
    private readonly cluster: Cluster,
  ) {}

  load(store: StateStore): void {
    for (const d of store.list()) this.update(d);
  }

  update(d: Deployment): void {
    if (LIVE_STATES.has(d.state)) this.local.set(d.hash, this.activator.units(d.hash).socketPath);
    else this.local.delete(d.hash);
  }

  resolveHash(hash: string, localFirst = false): Route {
    const socketPath = this.local.get(hash);
    if (socketPath && (localFirst || !this.activator.isBusy(hash)))
      return { kind: "local", hash, socketPath };
    // not here, or here but starting or stopping (its socket may be missing for a while): a member
    // where it is ready answers at once; else the local socket, which the request waits for
    const remote = this.remote(hash);
    if (socketPath && remote?.report !== "ready") return { kind: "local", hash, socketPath };
    return remote?.route ?? { kind: "none", hash };
  }

  private remote(hash: string): { route: Route; report: string } | undefined {
    const runners = this.cluster.whoRuns(hash).filter((r) => r.report.state !== "failed");
    const ready = runners.filter((r) => r.report.state === "ready");
    const pool = ready.length
      ? ready
      : runners.filter((r) => r.report.state === "idle" || r.report.state === "draining");
    if (pool.length === 0) return undefined;
    const pick = pool[this.turn++ % pool.length] as (typeof pool)[number];
    return {
      route: { kind: "remote", hash, member: pick.member, baseUrl: `http://${pick.ingress}` },
      report: pick.report.state,
    };
  }
}
