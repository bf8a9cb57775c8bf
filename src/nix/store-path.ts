import { HashdError } from "../lib/errors.ts";

export const STORE_DIR = "/nix/store";

/** nix-base32 omits e, o, u and t; a store hash is 32 of these characters (160 bits). */
export const HASH_PATTERN = /^[0-9a-df-np-sv-z]{32}$/;

/** Store path names: Nix allows letters, digits and +-._?= and forbids a leading dot (libstore/path.cc). */
const NAME_PATTERN = /^[a-zA-Z0-9+\-_?=][a-zA-Z0-9+\-._?=]{0,210}$/;

export interface StorePath {
  /** the full path, e.g. /nix/store/<hash>-<name> */
  path: string;
  hash: string;
  name: string;
}

export function isStoreHash(value: string): boolean {
  return HASH_PATTERN.test(value);
}

export function parseStoreHash(value: unknown): string {
  if (typeof value !== "string" || !HASH_PATTERN.test(value)) {
    throw new HashdError(
      "bad_request",
      `not a store hash: ${describe(value)} (expected 32 characters of nix-base32: 0-9 and a-z without e, o, u, t)`,
    );
  }
  return value;
}

/**
 * Accepts exactly a top-level store path (no sub-path, no trailing slash, no `..`), so that the
 * hash taken from it names the whole closure and can't be smuggled into a unit name or a URL.
 */
export function parseStorePath(value: unknown): StorePath {
  if (typeof value !== "string") throw new HashdError("bad_request", `not a store path: ${describe(value)}`);
  const prefix = `${STORE_DIR}/`;
  if (!value.startsWith(prefix)) {
    throw new HashdError("bad_request", `not a store path: ${describe(value)} (must start with ${prefix})`);
  }
  const base = value.slice(prefix.length);
  const hash = base.slice(0, 32);
  if (!HASH_PATTERN.test(hash) || base[32] !== "-") {
    throw new HashdError(
      "bad_request",
      `not a store path: ${describe(value)} (expected ${prefix}<32-character nix-base32 hash>-<name>)`,
    );
  }
  const name = base.slice(33);
  if (!NAME_PATTERN.test(name)) {
    throw new HashdError(
      "bad_request",
      `not a store path: ${describe(value)} (invalid name ${describe(name)})`,
    );
  }
  return { path: value, hash, name };
}

function describe(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}...` : text);
}
