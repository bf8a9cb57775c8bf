/**
 * Providers for storeStatusSource from the cluster (a gossip node, or a cluster of one) and the
 * alias service. Typed structurally (the few methods of Cluster and AliasService it reads), so the
 * status page compiles against what they expose and nothing else.
 */
import type { MemberAppState } from "../../model/reports.ts";
import type { MemberInfo } from "../gossip/index.ts";
import type { MemberReports, StatusProviders } from "./source.ts";
import type { AliasTarget, RolloutState, StatusAlias, StatusAliasChange } from "./types.ts";

export interface ClusterReads {
  readonly self: string;
  /** every member gossip knows, this host included */
  memberInfos(): MemberInfo[];
  memberState(name: string): MemberAppState | null;
}

export interface AliasReads {
  /** current aliases (pins and removed aliases left out) */
  list(): readonly { name: string; hash: string; split?: AliasTarget[]; rollout?: RolloutState }[];
  /** newest first, as this agent saw the writes win (kept in its database) */
  history(name: string, limit: number): readonly StatusAliasChange[];
}

/** Members whose last known report is kept after they died or left (the oldest go first). */
export const LAST_KNOWN_MEMBERS = 32;

/**
 * Members and the other members' reports. A dead or departed member's report is its last known
 * one, marked stale: the page keeps its hashes in view (an operator needs to see what went down
 * with it) without counting its numbers, as the retirement planner does not count them either.
 * Gossip may drop a dead member's state, so the last report seen alive is kept here, in memory,
 * for at most LAST_KNOWN_MEMBERS members.
 */
export function clusterProviders(
  cluster: ClusterReads,
): Required<Pick<StatusProviders, "self" | "members" | "reports">> {
  const lastKnown = new Map<string, MemberAppState["hashes"]>();
  return {
    self: cluster.self,
    members: () => cluster.memberInfos(),
    reports: () => {
      const out: MemberReports[] = [];
      for (const m of cluster.memberInfos()) {
        if (m.name === cluster.self) continue;
        const live = m.state === "alive" || m.state === "suspect";
        const state = cluster.memberState(m.name)?.hashes;
        if (live) {
          const hashes = state ?? [];
          lastKnown.delete(m.name);
          if (hashes.length) lastKnown.set(m.name, hashes);
          while (lastKnown.size > LAST_KNOWN_MEMBERS)
            lastKnown.delete(lastKnown.keys().next().value as string);
          out.push({ member: m.name, hashes });
          continue;
        }
        const last = state?.length ? state : lastKnown.get(m.name);
        if (last?.length) out.push({ member: m.name, hashes: last, stale: true });
      }
      return out;
    },
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
        ...(alias.split ? { split: alias.split.map((t) => ({ hash: t.hash, weight: t.weight })) } : {}),
        ...(alias.rollout ? { rollout: alias.rollout } : {}),
      }));
    },
  };
}
