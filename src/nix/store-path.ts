import { HashdError } from "../lib/errors.ts";
import { EXPECTED_HASH, isStoreHash } from "../model/names.ts";

export const STORE_DIR = "/nix/store";

/** Store path names: Nix allows letters, digits and +-._?= and forbids a leading dot (libstore/path.cc). */
const NAME_PATTERN = /^[a-zA-Z0-9+\-_?=][a-zA-Z0-9+\-._?=]{0,210}$/;

export interface StorePath {
  /** the full path, e.g. /nix/store/<hash>-<name> */
  path: string;
  hash: string;
  name: string;
}

export function parseStoreHash(value: unknown): string {
  if (typeof value !== "string" || !isStoreHash(value)) {
    throw new HashdError("bad_request", `not a store hash: ${describe(value)} (expected ${EXPECTED_HASH})`);
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
  if (!isStoreHash(hash) || base[32] !== "-") {
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
