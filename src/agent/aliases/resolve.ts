import { EXPECTED_ALIAS, EXPECTED_HASH, isDnsLabel, isStoreHash } from "../../model/names.ts";

/**
 * What a name stands for, read the way the ingress reads the label of `<label>.<zone>`: a store
 * hash, else (32 characters that are not a hash) a malformed hash, else an alias if it is a DNS
 * label. One function, so that `hashd logs <name>` and the ingress never disagree about a name.
 */
export type NameKind =
  | { kind: "hash"; hash: string }
  | { kind: "alias"; alias: string }
  | { kind: "bad-hash"; name: string }
  | { kind: "bad-name"; name: string };

export function classifyName(name: string): NameKind {
  if (isStoreHash(name)) return { kind: "hash", hash: name };
  if (name.length === 32) return { kind: "bad-hash", name };
  if (!isDnsLabel(name)) return { kind: "bad-name", name };
  return { kind: "alias", alias: name };
}

export type MalformedName = Extract<NameKind, { kind: "bad-hash" | "bad-name" }>;

export function isMalformed(c: NameKind): c is MalformedName {
  return c.kind === "bad-hash" || c.kind === "bad-name";
}

/** Why a name can name nothing. */
export function malformedNameMessage(c: MalformedName): string {
  return c.kind === "bad-hash"
    ? `malformed hash ${quote(c.name)} (expected ${EXPECTED_HASH})`
    : `${quote(c.name)} is neither a store hash (${EXPECTED_HASH}) nor an alias name (${EXPECTED_ALIAS})`;
}

export type NameResolution =
  | { ok: true; hash: string; alias: string | null }
  | { ok: false; reason: "malformed" | "unknown-alias"; message: string };

/** A hash as it is; an alias through the alias table (the one the ingress asks). */
export function resolveName(
  name: string,
  resolveAlias: (alias: string) => string | undefined,
): NameResolution {
  const c = classifyName(name);
  if (c.kind === "hash") return { ok: true, hash: c.hash, alias: null };
  if (isMalformed(c)) return { ok: false, reason: "malformed", message: malformedNameMessage(c) };
  const hash = resolveAlias(c.alias);
  return hash === undefined
    ? { ok: false, reason: "unknown-alias", message: `no alias named ${c.alias}` }
    : { ok: true, hash, alias: c.alias };
}

function quote(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
}
