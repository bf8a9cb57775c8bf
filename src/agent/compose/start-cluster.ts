import { hostname } from "node:os";
import { AliasService, recordAliasWrite, retentionPolicy } from "../aliases/alias-service.ts";
import { type Cluster, GossipCluster, SoloCluster } from "../cluster/cluster.ts";
import type { GossipEvent } from "../gossip/index.ts";
import { RetirementPlanner } from "../retirement/planner.ts";
import { Retirer } from "../retirement/retirer.ts";
import type { AgentState } from "./open-state.ts";
import type { StopStack } from "./stop-stack.ts";

/** The cluster as this host sees it, and what acts on that view. */
export interface StartedCluster {
  /** a gossip node, or, without a `gossip` section in the config, a cluster of one */
  cluster: Cluster;
  /** aliases and pins on the cluster's alias table; their history in the database */
  aliases: AliasService;
  /**
   * made here, since the status page (start-serving) shows its verdicts; start-loops runs it.
   * It reads the cluster's members with this host's report.
   */
  retirer: Retirer;
}

/**
 * Phase 2: the cluster (its stop pushed), not joined yet: start-loops joins once this host's first
 * report is published. Gossiped alias writes go into the history from the moment the node runs.
 */
export async function startCluster(state: AgentState, stops: StopStack): Promise<StartedCluster> {
  const { config, log, store } = state;
  const onGossip = (e: GossipEvent) => {
    if (e.type === "alias-changed") recordAliasWrite(store.db, e.record, Date.now());
  };
  const cluster: Cluster = config.gossip
    ? await GossipCluster.start(config, state.restoredAliases, onGossip, log)
    : new SoloCluster(hostname(), state.restoredAliases);
  stops.push("cluster", () => cluster.stop());
  const aliases = new AliasService(cluster.aliasBackend, store.db);

  const retirer = new Retirer({
    store,
    systemctl: state.systemctl,
    nix: state.nix,
    activator: state.activator,
    planner: new RetirementPlanner({ quietMs: config.quietSec * 1000 }),
    aliases,
    policy: retentionPolicy(config.retention),
    members: () => cluster.members(state.report()),
    log,
    onChange: state.changes.deploymentChanged,
  });
  return { cluster, aliases, retirer };
}
