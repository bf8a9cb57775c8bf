/**
 * Providers for storeStatusSource from the gossip layer. Typed structurally (Pick-like shapes of
 * GossipNode), so the status page compiles against what gossip exposes and nothing else.
 */
import type { AliasRecord, MemberAppState, MemberInfo } from "../gossip/types.ts";
import type { StatusProviders } from "./source.ts";
import type { StatusAlias, StatusAliasChange } from "./types.ts";

export interface GossipReads {
  readonly name: string;
  members(): MemberInfo[];
  memberState(name: string): MemberAppState | null;
  aliases(): AliasRecord[];
}

/**
 * Alias history as this agent saw it. Gossip keeps only each alias's winning write, so the agent
 * records every winner it learns of (the core's `alias-changed` event, and its own writes); the
 * history starts when the agent does and is not persisted.
 */
export class AliasHistory {
  private readonly byName = new Map<string, StatusAliasChange[]>();

  constructor(private readonly perName = 20) {}

  record(r: Pick<AliasRecord, "name" | "hash" | "hlc" | "origin">): void {
    const list = this.byName.get(r.name) ?? [];
    const change: StatusAliasChange = { hash: r.hash, at: r.hlc.wall, by: r.origin };
    if (list.some((c) => same(c, change))) return;
    list.push(change);
    list.sort((a, b) => b.at - a.at);
    this.byName.set(r.name, list.slice(0, this.perName));
  }

  /** Current aliases with their history, newest first; the current value is always the first. */
  views(current: readonly Pick<AliasRecord, "name" | "hash" | "hlc" | "origin">[]): StatusAlias[] {
    return current.map((r) => {
      this.record(r);
      const history = this.byName.get(r.name) ?? [];
      return { name: r.name, hash: r.hash, history: history.map((c) => ({ ...c })) };
    });
  }
}

const same = (a: StatusAliasChange, b: StatusAliasChange) =>
  a.hash === b.hash && a.at === b.at && a.by === b.by;

/**
 * Members, other members' reports and aliases from a gossip node. Reports of dead or departed
 * members are left out, as the retirement planner ignores them (their reports expire).
 */
export function gossipProviders(
  node: GossipReads,
  history = new AliasHistory(),
): Required<Pick<StatusProviders, "self" | "members" | "reports" | "aliases">> {
  return {
    self: node.name,
    members: () => node.members(),
    reports: () =>
      node
        .members()
        .filter((m) => m.name !== node.name && (m.state === "alive" || m.state === "suspect"))
        .map((m) => ({ member: m.name, hashes: node.memberState(m.name)?.hashes ?? [] })),
    aliases: () => history.views(node.aliases()),
  };
}
