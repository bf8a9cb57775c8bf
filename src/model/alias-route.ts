import type { AliasTarget } from "./alias-record.ts";

/** An alias as the ingress routes it (agent/aliases/alias-service.ts routeOf; agent/ingress/sticky.ts picks the target). */
export interface AliasRoute {
  /** the target, or a weighted alias's heaviest target */
  hash: string;
  split?: readonly AliasTarget[] | undefined;
  /**
   * Hashes a `hashd-<alias>` cookie may pin: the alias's targets, the earlier targets its record
   * carries and a rollout's baseline. Nothing else: a client cannot use the cookie to reach a
   * private preview through a public alias.
   */
  pinnable: ReadonlySet<string>;
}

/** An alias that sends everything to one hash and pins nothing else (tests, a plain record). */
export const plainAliasRoute = (hash: string): AliasRoute => ({ hash, pinnable: new Set([hash]) });
