import { HashdError } from "../../lib/errors.ts";
import { type AliasTarget, heaviestOf, MAX_SPLIT_TARGETS, splitProblem } from "../../model/alias-record.ts";
import { isStoreHash } from "../../model/names.ts";
import { parseStoreHash } from "../../nix/store-path.ts";

/** What one alias is set to: a hash, or a split between hashes (hash = the heaviest). */
export interface AliasValue {
  hash: string;
  split?: AliasTarget[];
}

/** Four `<hash>:<weight>` and their commas, with room for spaces. */
const MAX_VALUE_CHARS = 256;

/**
 * `<hash>` (100%), `<hash>:100`, or `<a>:90,<b>:10` (2-4 hashes, integer weights summing to 100,
 * kept in the order given: the order the stable split hands out its buckets in). A 400 for
 * anything else, before anything is split or allocated per part.
 */
export function parseAliasValue(value: string): AliasValue {
  if (value.length > MAX_VALUE_CHARS) throw bad(`alias value longer than ${MAX_VALUE_CHARS} characters`);
  const parts = value.split(",").map((p) => p.trim());
  if (parts.length === 1 && !hasWeight(parts[0] as string))
    return { hash: parseStoreHash(parts[0] as string) };
  if (parts.length > MAX_SPLIT_TARGETS) throw bad(`a weighted alias has at most ${MAX_SPLIT_TARGETS} hashes`);
  const split = parts.map(parseTarget);
  if (split.length === 1) {
    const only = split[0] as AliasTarget;
    if (only.weight !== 100) throw bad(`a single hash takes weight 100, got ${only.weight}`);
    return { hash: only.hash };
  }
  const problem = splitProblem(split, isStoreHash);
  if (problem !== null) throw bad(problem);
  return { hash: heaviestOf(split), split };
}

/** `a:90,b:10` as written back (the CLI's and history's form). */
export function formatAliasValue(v: {
  hash: string | null;
  split?: readonly AliasTarget[] | undefined;
}): string {
  if (v.split !== undefined) return v.split.map((t) => `${t.hash}:${t.weight}`).join(",");
  return v.hash ?? "(removed)";
}

const hasWeight = (part: string): boolean => /:[0-9]{1,3}$/.test(part);

function parseTarget(part: string): AliasTarget {
  const m = /^(.+):([0-9]{1,3})$/.exec(part);
  if (m === null) throw bad(`expected <hash>:<weight>, got ${JSON.stringify(part.slice(0, 100))}`);
  return { hash: parseStoreHash(m[1] as string), weight: Number(m[2]) };
}

const bad = (message: string): HashdError => new HashdError("bad_request", message);
