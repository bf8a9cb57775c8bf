import type { Activator } from "./activator.ts";
import type { Cluster } from "./cluster.ts";
import type { Route, RouteTable } from "./ingress/types.ts";
import { type Deployment, LIVE_STATES } from "./state/deployment.ts";
import type { StateStore } from "./state/store.ts";

/**
 * Where the ingress sends a hash: its local socket while the hash is live here (draining
 * included: a hash URL answers until the hash retires), else a member where it is ready (or, if
 * none, idle: its socket wakes it), else nowhere. Local routes are a map kept current from state
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

  resolveHash(hash: string): Route {
    const socketPath = this.local.get(hash);
    if (socketPath) return { kind: "local", hash, socketPath };
    const runners = this.cluster.whoRuns(hash).filter((r) => r.report.state !== "failed");
    const ready = runners.filter((r) => r.report.state === "ready");
    const pool = ready.length
      ? ready
      : runners.filter((r) => r.report.state === "idle" || r.report.state === "draining");
    if (pool.length === 0) return { kind: "none", hash };
    const pick = pool[this.turn++ % pool.length] as (typeof pool)[number];
    return { kind: "remote", hash, member: pick.member, baseUrl: `http://${pick.ingress}` };
  }
}
