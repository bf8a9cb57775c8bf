/**
 * Which hash an alias request goes to (weighted aliases, skew protection): a sticky cookie's hash
 * while it is still one the alias may pin and live somewhere, else the stable split of the client
 * address over the alias's weights. Pure functions, and the small per-hash clock of sticky use
 * that the report publishes (a hash clients are pinned to is wanted until their cookies expire).
 */
import type { AliasTarget } from "../../model/alias-record.ts";
import type { AliasRoute } from "../../model/alias-route.ts";
import { isStoreHash } from "../../model/names.ts";
import { unmapped } from "./access.ts";

export interface StickyConfig {
  /** Max-Age of the cookie, seconds; 0 turns sticky cookies off */
  maxAgeSec: number;
  /** aliases that set no cookie and follow none */
  disabled: ReadonlySet<string>;
}

export const DEFAULT_STICKY: StickyConfig = { maxAgeSec: 3600, disabled: new Set() };

/**
 * Whether an alias sets and follows sticky cookies: on unless turned off, or named `bypass` (its
 * cookie would be `hashd-bypass`, the private previews' token cookie, which the ingress strips).
 */
export function stickyFor(config: StickyConfig, alias: string): boolean {
  return config.maxAgeSec > 0 && !config.disabled.has(alias) && alias !== "bypass";
}

/** The choice for one request: where it goes, whether to (re)set the cookie, whether a cookie decided. */
export interface AliasChoice {
  hash: string;
  setCookie: boolean;
  pinned: boolean;
}

/**
 * FNV-1a (32 bits) of the alias and the client address, in 0..99: the same client lands in the same
 * bucket at every ingress and in every version of hashd (no seeded or runtime-specific hash).
 */
export function bucketOf(alias: string, clientAddress: string): number {
  let h = 0x811c9dc5;
  const key = `${alias}\u0000${unmapped(clientAddress)}`;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 100;
}

/**
 * The target whose share covers `bucket`, shares laid out in the split's order. A rollout writes
 * [baseline, canary], so a bucket that reached the canary at 5% still reaches it at 25%: raising
 * a weight only moves clients towards the canary.
 */
export function targetForBucket(split: readonly AliasTarget[], bucket: number): string {
  let upTo = 0;
  for (const t of split) {
    upTo += t.weight;
    if (bucket < upTo) return t.hash;
  }
  return (split[split.length - 1] as AliasTarget).hash;
}

export function chooseAliasTarget(
  route: AliasRoute,
  alias: string,
  cookieHash: string | undefined,
  clientAddress: string,
  sticky: boolean,
  isLive: (hash: string) => boolean,
): AliasChoice {
  if (sticky && cookieHash !== undefined && route.pinnable.has(cookieHash) && isLive(cookieHash))
    return { hash: cookieHash, setCookie: false, pinned: true };
  const hash =
    route.split === undefined ? route.hash : targetForBucket(route.split, bucketOf(alias, clientAddress));
  return { hash, setCookie: sticky, pinned: false };
}

/** Cookies the ingress reads per alias request: at most this many `hashd-` pairs are looked at. */
const MAX_PAIRS = 32;

/**
 * The value of the `hashd-<alias>` cookie in Cookie header values, if it is a store hash. The
 * first well-formed one wins; a malformed value is ignored (the request is split as if it had none).
 */
export function stickyCookieHash(cookies: string | undefined, alias: string): string | undefined {
  if (cookies === undefined) return undefined;
  const name = `hashd-${alias}=`;
  let from = 0;
  for (let n = 0; n < MAX_PAIRS; n++) {
    const at = cookies.indexOf(name, from);
    if (at < 0) return undefined;
    from = at + name.length;
    const before = at === 0 ? "" : cookies[at - 1];
    if (before !== "" && before !== ";" && before !== " " && before !== "\t") continue;
    const end = cookies.indexOf(";", from);
    const value = cookies.slice(from, end < 0 ? undefined : end).trim();
    if (isStoreHash(value)) return value;
  }
  return undefined;
}

/** The Set-Cookie header line (with CRLF) that pins a client to `hash` for `alias`. */
export function stickyCookieLine(alias: string, hash: string, maxAgeSec: number, secure: boolean): string {
  const attrs = `Max-Age=${maxAgeSec}; Path=/; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
  return `set-cookie: hashd-${alias}=${hash}; ${attrs}\r\n`;
}

/**
 * When clients pinned to each hash may come back: a request that followed a cookie at `now` means
 * the cookie lives at most maxAge more. Bounded: the entry of a hash is replaced, never added to,
 * and hashes whose time passed are dropped when read.
 */
export class StickyUse {
  private readonly until = new Map<string, number>();

  constructor(private readonly maxHashes = 4096) {}

  note(hash: string, now: number, maxAgeSec: number): void {
    if (!this.until.has(hash) && this.until.size >= this.maxHashes) return;
    // rounded up to 10 s, so that the report (which carries it) changes at most that often
    this.until.set(hash, Math.ceil((now + maxAgeSec * 1000) / 10_000) * 10_000);
  }

  /** ms until which pinned clients may return to `hash`, if that is still ahead of `now`. */
  untilOf(hash: string, now: number): number | undefined {
    const t = this.until.get(hash);
    if (t === undefined) return undefined;
    if (t > now) return t;
    this.until.delete(hash);
    return undefined;
  }
}
