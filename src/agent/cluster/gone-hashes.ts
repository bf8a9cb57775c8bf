import { LIVE_STATES } from "../../model/deployment.ts";
import { isAliasName } from "../../model/names.ts";
import type { AliasService } from "../aliases/alias-service.ts";
import { GONE_ALIASES_MAX, type GoneInfo } from "../ingress/gone.ts";
import type { GoneHashes } from "../ingress/types.ts";
import type { StateStore } from "../state/store.ts";

/**
 * Which hashes are gone (410) rather than unknown (404), asked by the ingress for a hash that no
 * member serves. Gone: retired here (by the retirer or by `hashd deactivate`: the row stays, as
 * history), or reported retired by another member (retired-elsewhere.ts), whichever is newer. Not
 * gone:
 * - a hash live here again (activated after its retirement), or a local row that changed after
 *   the other member's report (a later failed activation here is a 404, as before);
 * - a hash an alias or pin points at now, unless it was deactivated by hand: the retirer brings
 *   such a hash back from the local store (a rollback), so it is about to answer again.
 */
export class AgentGoneHashes implements GoneHashes {
  constructor(
    private readonly store: StateStore,
    private readonly aliases: AliasService,
  ) {}

  lookup(hash: string): GoneInfo | undefined {
    const local = this.store.lastState(hash);
    if (local !== undefined && LIVE_STATES.has(local.state)) return undefined;
    let gone: { at: number; byHand: boolean } | undefined;
    if (local?.state === "retired") gone = { at: local.updatedAt, byHand: local.retiredByHand };
    const heard = this.store.retiredElsewhere(hash);
    if (heard !== undefined && heard.retiredAt > (local?.updatedAt ?? Number.NEGATIVE_INFINITY))
      if (gone === undefined || heard.retiredAt > gone.at) gone = { at: heard.retiredAt, byHand: false };
    if (gone === undefined) return undefined;
    if (!gone.byHand && this.aliases.isWanted(hash)) return undefined;
    const now = new Map(this.aliases.list().map((a) => [a.name, a.hash]));
    const aliases = this.aliases
      .formerAliasesOf(hash, GONE_ALIASES_MAX)
      .filter(isAliasName)
      .map((name) => ({ name, hash: now.get(name) ?? null }));
    return { hash, retiredAt: gone.at, byHand: gone.byHand, aliases };
  }
}
