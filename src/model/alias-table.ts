/**
 * Cluster-wide aliases: a last-writer-wins register per name, ordered by hybrid logical clock
 * and then origin name (hlc.ts). Every member converges to the same winner whatever order the
 * writes arrive in, because the order is total and merging is idempotent and commutative.
 * Removals are tombstones (hash null) so a late copy of an older write cannot resurrect a name.
 * Each record carries the name's previous targets as its writer saw them (`previousAfter`), so the
 * winning record alone tells every member the same recent history.
 */

import { type AliasRecord, type AliasWrite, PREVIOUS_TARGETS_PER_ALIAS, targetsOf } from "./alias-record.ts";
import { compareWrites, HLC_ZERO, type Hlc, hlcReceive, hlcTick, hlcTooFarAhead } from "./hlc.ts";

export class AliasTable {
  private readonly records = new Map<string, AliasRecord>();
  private clock: Hlc = HLC_ZERO;

  get hlc(): Hlc {
    return this.clock;
  }

  get(name: string): AliasRecord | undefined {
    return this.records.get(name);
  }

  all(): AliasRecord[] {
    return [...this.records.values()].map(copy);
  }

  /** Timestamp for a local write (advances our clock). */
  tick(physicalMs: number): Hlc {
    this.clock = hlcTick(this.clock, physicalMs);
    return this.clock;
  }

  /**
   * Fold a remote timestamp into our clock so our next write orders after it. False (and no
   * change) if it is further ahead of our physical clock than `maxDriftMs`.
   */
  observe(remote: Hlc, physicalMs: number, maxDriftMs: number): boolean {
    if (hlcTooFarAhead(remote, physicalMs, maxDriftMs)) return false;
    this.clock = hlcReceive(this.clock, remote, physicalMs);
    return true;
  }

  /** A local write (not applied yet): its previous targets follow from the held record. */
  record(write: AliasWrite, hlc: Hlc, origin: string): AliasRecord {
    const { name, hash, split, rollout } = write;
    const r: AliasRecord = {
      name,
      hash,
      hlc: { ...hlc },
      origin,
      previous: previousAfter(this.records.get(name), write),
    };
    if (split !== undefined) r.split = split.map((t) => ({ ...t }));
    if (rollout !== undefined) r.rollout = structuredClone(rollout);
    return r;
  }

  /** Merge one record; true if it won (it is now the value for its name). */
  apply(record: AliasRecord): boolean {
    const held = this.records.get(record.name);
    if (held !== undefined && compareWrites(record, held) <= 0) return false;
    this.records.set(record.name, copy(record));
    return true;
  }
}

export function copyAliasRecord(r: AliasRecord): AliasRecord {
  const out: AliasRecord = { ...r, hlc: { ...r.hlc }, previous: [...r.previous] };
  if (r.split !== undefined) out.split = r.split.map((t) => ({ ...t }));
  if (r.rollout !== undefined) out.rollout = structuredClone(r.rollout);
  return out;
}

const copy = copyAliasRecord;

/**
 * The previous targets of `write` over `held`: held's targets (a split's in its order), then held's
 * previous, without repeats, nulls (removals) or the hash a plain write points at, newest first, at
 * most PREVIOUS_TARGETS_PER_ALIAS. A weighted write keeps every earlier target, also the ones it
 * still splits to: rolling back a split goes to 100% of the hash the alias had before it.
 */
export function previousAfter(
  held: AliasRecord | undefined,
  write: Pick<AliasWrite, "hash" | "split">,
): string[] {
  const plain = write.split === undefined ? write.hash : null;
  const out: string[] = [];
  for (const h of held === undefined ? [] : [...targetsOf(held), ...held.previous]) {
    if (h === plain || out.includes(h)) continue;
    out.push(h);
    if (out.length === PREVIOUS_TARGETS_PER_ALIAS) break;
  }
  return out;
}
