/** A write to a cluster-wide alias, as stored, replicated and merged (alias-table.ts). */
import type { Hlc } from "./hlc.ts";
import type { RolloutState } from "./rollout-state.ts";

/** Previous targets an alias record carries (retention keep-last counts up to this + 1). */
export const PREVIOUS_TARGETS_PER_ALIAS = 9;

/** Hashes one weighted alias may split its requests between. */
export const MAX_SPLIT_TARGETS = 4;

/** One hash of a weighted alias and its share of the alias's requests, in percent (1-99). */
export interface AliasTarget {
  hash: string;
  weight: number;
}

export interface AliasRecord {
  name: string;
  /**
   * null = the alias was removed (a tombstone that still wins over older writes). For a weighted
   * alias: its heaviest target (the first of them on a tie), what `resolve` and older agents read.
   */
  hash: string | null;
  /**
   * A weighted alias: 2 to MAX_SPLIT_TARGETS distinct hashes whose weights sum to 100, in the
   * writer's order (the order the stable split assigns buckets in, alias-split.ts). Absent: 100%
   * to `hash`.
   */
  split?: AliasTarget[];
  /** The staged rollout or guard that made this write (and is driven from it), rollout-state.ts. */
  rollout?: RolloutState;
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

/** What one alias of a write says, before the table stamps it (alias-table.ts `record`). */
export interface AliasWrite {
  name: string;
  hash: string | null;
  split?: AliasTarget[];
  rollout?: RolloutState;
}

/** Every hash an alias record sends requests to: its split, else its hash, else none. */
export function targetsOf(r: { hash: string | null; split?: readonly AliasTarget[] | undefined }): string[] {
  if (r.split !== undefined) return r.split.map((t) => t.hash);
  return r.hash === null ? [] : [r.hash];
}

/** The hash a split's `hash` field names: the heaviest target, the first one on a tie. */
export function heaviestOf(split: readonly AliasTarget[]): string {
  let best = split[0] as AliasTarget;
  for (const t of split) if (t.weight > best.weight) best = t;
  return best.hash;
}

/**
 * Why a split cannot be written, or null: 2 to MAX_SPLIT_TARGETS distinct hashes, integer
 * weights 1-99 that sum to 100. (One hash at 100 is written as a plain alias.)
 */
export function splitProblem(split: readonly AliasTarget[], isHash: (h: string) => boolean): string | null {
  if (split.length < 2 || split.length > MAX_SPLIT_TARGETS)
    return `a weighted alias has 2 to ${MAX_SPLIT_TARGETS} hashes, got ${split.length}`;
  const seen = new Set<string>();
  let sum = 0;
  for (const t of split) {
    if (!isHash(t.hash)) return `not a store hash: ${JSON.stringify(String(t.hash).slice(0, 80))}`;
    if (seen.has(t.hash)) return `hash ${t.hash} appears twice`;
    seen.add(t.hash);
    if (!Number.isInteger(t.weight) || t.weight < 1 || t.weight > 99)
      return `weight of ${t.hash} must be an integer from 1 to 99, got ${t.weight}`;
    sum += t.weight;
  }
  return sum === 100 ? null : `weights must sum to 100, got ${sum}`;
}
