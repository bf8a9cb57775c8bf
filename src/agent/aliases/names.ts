import { HashdError } from "../../lib/errors.ts";
import { EXPECTED_ALIAS, isAliasName } from "../../model/names.ts";

/** An alias name (src/model/names.ts: a DNS label that is not a store hash), or a 400. */
export function parseAliasName(value: unknown): string {
  if (!isAliasName(value)) {
    throw new HashdError(
      "bad_request",
      `not an alias name: ${JSON.stringify(value)} (${EXPECTED_ALIAS}, and not a store hash)`,
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
