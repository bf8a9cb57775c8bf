import { hostname } from "node:os";
import type { HashReport } from "../../model/reports.ts";
import { AliasService, recordAliasWrite, retentionPolicy } from "../aliases/alias-service.ts";
import { type Cluster, GossipCluster, SoloCluster } from "../cluster/cluster.ts";
import { RetiredElsewhereLog } from "../cluster/retired-elsewhere.ts";
import type { GossipEvent } from "../gossip/index.ts";
import { RetirementPlanner } from "../retirement/planner.ts";
import { Retirer } from "../retirement/retirer.ts";
import { RolloutDriver } from "../rollout/driver.ts";
import type { AgentState } from "./open-state.ts";
import { rolloutIo } from "./rollout-io.ts";
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
  /** what other members retired, kept for the ingress's 410 (start-loops flushes it) */
  retiredElsewhere: RetiredElsewhereLog;
  /** staged rollouts and guards: every agent ticks it, the elected member drives (start-loops) */
  rollouts: RolloutDriver;
}

/**
 * Phase 2: the cluster (its stop pushed), not joined yet: start-loops joins once this host's first
 * report is published. Gossiped alias writes go into the history from the moment the node runs.
 */
export async function startCluster(state: AgentState, stops: StopStack): Promise<StartedCluster> {
  const { config, log, store } = state;
  // gossip may speak before the cluster below is assigned: reports are read later, by name
  let reportOf: (member: string) => HashReport[] | undefined = () => undefined;
  const retiredElsewhere = new RetiredElsewhereLog(store, (member) => reportOf(member));
  const onGossip = (e: GossipEvent) => {
    if (e.type === "alias-changed") recordAliasWrite(store.db, e.record, Date.now());
    if (e.type === "state-changed" && e.version !== null) retiredElsewhere.changed(e.name);
  };
  const cluster: Cluster = config.gossip
    ? await GossipCluster.start(config, state.restoredAliases, onGossip, log)
    : new SoloCluster(hostname(), state.restoredAliases);
  stops.push("cluster", () => cluster.stop());
  // this host's own retirements are in its deployments (gone-hashes.ts reads them there)
  reportOf = (member) => (member === cluster.self ? undefined : cluster.memberState(member)?.hashes);
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
  state.verdicts.current = () => retirer.verdicts;
  const rollouts = new RolloutDriver(rolloutIo(state, cluster, aliases));
  return { cluster, aliases, retirer, retiredElsewhere, rollouts };
}
