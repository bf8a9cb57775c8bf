import type { AliasRecord, AliasWrite } from "../../model/alias-record.ts";
import { AliasTable } from "../../model/alias-table.ts";
import type { AliasBackend } from "./alias-service.ts";

/**
 * The alias store of an agent that runs without gossip (a single host): the same last-writer-wins
 * table the gossip core uses, kept in memory and rebuilt from the history at start.
 */
export class LocalAliasBackend implements AliasBackend {
  private readonly table = new AliasTable();

  constructor(
    private readonly origin: string,
    initial: readonly AliasRecord[] = [],
  ) {
    for (const r of initial) {
      this.table.observe(r.hlc, r.hlc.wall, Number.POSITIVE_INFINITY);
      this.table.apply(r);
    }
  }

  setAliases(entries: readonly AliasWrite[], now: number): AliasRecord[] {
    const hlc = this.table.tick(now);
    return entries.map((e) => {
      const r: AliasRecord = this.table.record(e, hlc, this.origin);
      this.table.apply(r);
      return r;
    });
  }

  aliases(): AliasRecord[] {
    return this.table.all();
  }
}
