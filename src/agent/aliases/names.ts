import { HashdError } from "../../lib/errors.ts";
import { isStoreHash } from "../../nix/store-path.ts";

/**
 * Alias names are DNS labels (they become `<alias>.<zone>`), and never 32 nix-base32 characters,
 * which the ingress would read as a hash.
 */
const ALIAS_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isAlias(name: string): boolean {
  return ALIAS_PATTERN.test(name) && !isStoreHash(name);
}

export function parseAliasName(value: unknown): string {
  if (typeof value !== "string" || !isAlias(value)) {
    throw new HashdError(
      "bad_request",
      `not an alias name: ${JSON.stringify(value)} (a DNS label: 1-63 of a-z, 0-9 and -, and not a store hash)`,
    );
  }
  return value;
}

/**
 * Pins travel as alias records under a name no alias can have (a colon is not allowed in a
 * label), so they are cluster-wide, last-writer-wins and survive restarts exactly like aliases.
 */
const PIN_PREFIX = "pin:";

export const pinName = (hash: string): string => `${PIN_PREFIX}${hash}`;

export function hashOfPin(name: string): string | undefined {
  return name.startsWith(PIN_PREFIX) ? name.slice(PIN_PREFIX.length) : undefined;
}
