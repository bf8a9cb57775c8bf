/**
 * Providers for storeStatusSource from the cluster (a gossip node, or a cluster of one) and the
 * alias service. Typed structurally (the few methods of Cluster and AliasService it reads), so the
 * status page compiles against what they expose and nothing else.
 */
import type { MemberAppState } from "../../model/reports.ts";
import type { MemberInfo } from "../gossip/index.ts";
import type { StatusProviders } from "./source.ts";
import type { StatusAlias, StatusAliasChange } from "./types.ts";

export interface ClusterReads {
  readonly self: string;
  /** every member gossip knows, this host included */
  memberInfos(): MemberInfo[];
  memberState(name: string): MemberAppState | null;
}

export interface AliasReads {
  /** current aliases (pins and removed aliases left out) */
  list(): readonly { name: string; hash: string }[];
  /** newest first, as this agent saw the writes win (kept in its database) */
  history(name: string, limit: number): readonly StatusAliasChange[];
}

/**
 * Members and the other members' reports. Reports of dead or departed members are left out: the
 * retirement planner ignores them (their reports expire), and a dead member runs nothing, so the
 * page must not show its last hashes as running.
 */
export function clusterProviders(
  cluster: ClusterReads,
): Required<Pick<StatusProviders, "self" | "members" | "reports">> {
  return {
    self: cluster.self,
    members: () => cluster.memberInfos(),
    reports: () =>
      cluster
        .memberInfos()
        .filter((m) => m.name !== cluster.self && (m.state === "alive" || m.state === "suspect"))
        .map((m) => ({ member: m.name, hashes: cluster.memberState(m.name)?.hashes ?? [] })),
  };
}

/** Current aliases with their history (newest first, at most `perName` writes each). */
export function aliasProviders(
  aliases: () => AliasReads | undefined,
  perName = 20,
): Required<Pick<StatusProviders, "aliases">> {
  return {
    aliases: (): StatusAlias[] => {
      const a = aliases();
      if (!a) return [];
      return a.list().map((alias) => ({
        name: alias.name,
        hash: alias.hash,
        history: a.history(alias.name, perName).map((h) => ({ hash: h.hash, at: h.at, by: h.by })),
      }));
    },
  };
}
