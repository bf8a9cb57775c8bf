import { compareWrites } from "../../model/hlc.ts";
import type { RequestCounts } from "../../model/request-stats.ts";
import type { AliasService } from "../aliases/alias-service.ts";
import type { Cluster } from "../cluster/cluster.ts";
import type { MemberView } from "../retirement/planner.ts";
import type { RolloutIo } from "../rollout/driver.ts";
import type { AgentState } from "./open-state.ts";

const VIEW_MS = 100;
/** How often a member that is behind asks a peer for its alias table (one push-pull). */
const SYNC_ASK_MS = 2_000;

/**
 * The rollout driver's view of this agent (rollout/driver.ts): the members gossip sees, the known
 * members the retirer saved (so a restarted agent's short view cannot make a majority of itself),
 * every live member's reported request counts with this host's current ones, and alias writes that
 * are dropped when the alias moved since the driver read it (a `hashd alias set`, pause or abort).
 */
export function rolloutIo(state: AgentState, cluster: Cluster, aliases: AliasService): RolloutIo {
  const { store, requestStats } = state;
  // one view per tick: the driver asks several times, and building the report reads the store
  let view: { at: number; members: MemberView[]; known: number; synced: boolean } | undefined;
  // A member that starts, or that saw no majority (cut off, or alone after a restart), holds alias
  // records that may be stale: it drives nothing until a push-pull brought a peer's whole table.
  // Otherwise a restarted driver would write its old step over the rollout the others finished.
  let syncsWhenBehind = cluster.aliasSyncs();
  let askedAt = 0;
  const read = () => {
    const now = Date.now();
    if (view === undefined || now - view.at > VIEW_MS) {
      const members = cluster
        .members(state.report())
        .filter((m) => m.status === "alive" || m.status === "suspect");
      const known = new Set([...store.knownMembers(), ...members.map((m) => m.name)]).size;
      const syncs = cluster.aliasSyncs();
      if (members.length * 2 <= known) syncsWhenBehind = syncs;
      const synced = syncs === undefined || syncsWhenBehind === undefined || syncs > syncsWhenBehind;
      // behind while a majority is in view: ask for a table now rather than at the next round
      if (!synced && members.length * 2 > known && now - askedAt >= SYNC_ASK_MS) {
        askedAt = now;
        cluster.syncAliases();
      }
      view = { at: now, members, known, synced };
    }
    return view;
  };
  const up = () => read().members;
  return {
    self: () => cluster.self,
    // suspects count as alive, as they do for retirement: a suspect lowest member still drives
    // not synced: no member counts as alive here, so this member elects nobody and drives nothing
    aliveMembers: () => (read().synced ? up().map((m) => m.name) : []),
    knownMemberCount: () => read().known,
    aliasRecords: () => aliases.records(),
    countsOf: (hash) => {
      const out = new Map<string, RequestCounts>();
      for (const m of up()) {
        const counts =
          m.name === cluster.self
            ? requestStats.countsOf(hash)
            : m.hashes.find((h) => h.hash === hash)?.counts;
        if (counts !== undefined) out.set(m.name, counts);
      }
      return out;
    },
    write: (name, hash, split, rollout, basis) => {
      const held = aliases.recordOf(name);
      if (held === undefined || compareWrites(held, basis) !== 0) return false;
      aliases.write([{ name, hash, ...(split === undefined ? {} : { split }), rollout }]);
      return true;
    },
    event: (kind, message, hash) => store.event(hash ?? "", kind, message),
    now: () => Date.now(),
  };
}
