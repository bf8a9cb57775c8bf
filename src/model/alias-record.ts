/** A write to a cluster-wide alias, as stored, replicated and merged (alias-table.ts). */
import type { Hlc } from "./hlc.ts";

/** Previous targets an alias record carries (retention keep-last counts up to this + 1). */
export const PREVIOUS_TARGETS_PER_ALIAS = 9;

export interface AliasRecord {
  name: string;
  /** null = the alias was removed (a tombstone that still wins over older writes). */
  hash: string | null;
  /**
   * The distinct hashes the name pointed at before this write, newest first, at most
   * PREVIOUS_TARGETS_PER_ALIAS, as the writer saw them. Every member computes
   * keep-last retention and rollback from the winning record, so they agree once their tables do.
   */
  previous: string[];
  hlc: Hlc;
  /** Name of the member that made the write. */
  origin: string;
}
