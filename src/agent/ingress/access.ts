import type { HashUrlAccess } from "../../model/config.ts";
import type { BypassSecret } from "./bypass-token.ts";

/**
 * Private previews: who may reach a hash URL. A pure decision over what the request says and what
 * the host knows, taken after routing (so the hash is known) and before anything looks the hash up:
 * a refusal is the very 404 an unknown hash gets, with nothing hash-specific done before it, so a
 * client without access learns neither that the hash runs nor that it was retired (no 410).
 *
 * Always let through, in every mode:
 * - alias URLs (`via: "alias"`): what an alias points at is public by definition;
 * - a hop from a member whose proof checked out (`via: "hop"`): that member decided already;
 * - a client on this host (`local`): services calling other hashes through HASHD_INGRESS, which
 *   is how `lib.mkHashUrl` chains work (isLocalClient, below, says what counts as local).
 * Otherwise `public` lets everyone through, `aliased` the hashes an alias points at now, and the
 * bypass token (x-hashd-bypass header, or the cookie `?hashd-bypass=` set) opens the rest.
 */

/** The header, query parameter and cookie name of the bypass token. */
export const BYPASS_NAME = "hashd-bypass";
/** At most this many hashd-bypass cookies of one request are checked (a browser sends one per path). */
export const MAX_BYPASS_COOKIES = 4;

export type Via = "host" | "alias" | "path" | "hop";

export interface AccessFacts {
  mode: HashUrlAccess;
  via: Via;
  hash: string;
  /** an alias points at the hash now */
  aliased: boolean;
  /** the client is a process on this host */
  local: boolean;
  /** the x-hashd-bypass header */
  header: string | undefined;
  /** values of hashd-bypass cookies (the parser took them out of the Cookie header) */
  cookies: readonly string[];
  /** the hashd-bypass query parameter, decoded; undefined when the target has none */
  query: string | undefined;
}

export type AccessDecision =
  | { kind: "allow" }
  /** the same 404 as an unknown hash */
  | { kind: "deny" }
  /**
   * the target carried ?hashd-bypass=: answer with a redirect to the same URL without it, so the
   * token leaves the address bar, the history and every log after this one; with `cookie`, the
   * token was right and a cookie for this hash goes with the redirect
   */
  | { kind: "redirect"; cookie: boolean };

export function decideAccess(
  f: AccessFacts,
  secret: BypassSecret | undefined,
  nowMs: number,
): AccessDecision {
  const open =
    f.via === "alias" ||
    f.via === "hop" ||
    f.local ||
    f.mode === "public" ||
    (f.mode === "aliased" && f.aliased);
  if (f.query !== undefined) {
    const right = secret?.matches(f.query) === true;
    if (!open && !right) return { kind: "deny" };
    // a cookie only where one is scoped to a hash: its own host name, or its /h/<hash>/ path
    return { kind: "redirect", cookie: right && (f.via === "host" || f.via === "path") };
  }
  if (open) return { kind: "allow" };
  if (secret === undefined) return { kind: "deny" };
  if (f.header !== undefined && secret.matches(f.header)) return { kind: "allow" };
  for (const value of f.cookies) if (secret.cookieOpens(value, f.hash, nowMs)) return { kind: "allow" };
  return { kind: "deny" };
}

/**
 * The Set-Cookie line for a hash: host-only (no Domain), HttpOnly, SameSite=Lax, on the hash's own
 * host name (Path=/) or its `/h/<hash>/` path on a shared one. Secure when the request came over
 * the ingress's own TLS listener (`secure`); never from a header: a TLS terminator's
 * X-Forwarded-Proto is a client's claim here.
 */
export function bypassCookieLine(
  value: string,
  prefix: string | undefined,
  maxAgeSec: number,
  secure = false,
): string {
  const path = prefix === undefined ? "/" : `${prefix}/`;
  const line = `${BYPASS_NAME}=${value}; Path=${path}; Max-Age=${maxAgeSec}; HttpOnly; SameSite=Lax`;
  return secure ? `${line}; Secure` : line;
}

const PARAM = /(?:^|[?&])hashd(?:-|%2d)bypass(?:[=&]|$)/i;

/**
 * The request-target without any hashd-bypass parameter, and the first one's value (decoded), or
 * undefined when it has none. Names are compared case-insensitively and percent-decoded, so no
 * spelling of the parameter reaches the service.
 */
export function takeBypassParam(target: string): { rest: string; token: string } | undefined {
  const q = target.indexOf("?");
  if (q < 0 || !PARAM.test(target.slice(q))) return undefined;
  let token: string | undefined;
  const kept: string[] = [];
  for (const part of target.slice(q + 1).split("&")) {
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    if (decode(name).toLowerCase() !== BYPASS_NAME) kept.push(part);
    else token ??= eq < 0 ? "" : decode(part.slice(eq + 1));
  }
  if (token === undefined) return undefined;
  const path = target.slice(0, q);
  return { rest: kept.length === 0 ? path : `${path}?${kept.join("&")}`, token };
}

function decode(text: string): string {
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Splits a Cookie header value into the hashd-bypass values and the rest (what the service may
 * see), or undefined when it has none (then the line goes on untouched). Cookie names are
 * compared case-insensitively, so no spelling reaches the service.
 */
export function takeBypassCookies(value: string): { rest: string; values: string[] } | undefined {
  if (!/hashd-bypass/i.test(value)) return undefined;
  const values: string[] = [];
  const kept: string[] = [];
  for (const raw of value.split(";")) {
    const pair = raw.trim();
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    if (name.toLowerCase() !== BYPASS_NAME) kept.push(pair);
    else if (values.length < MAX_BYPASS_COOKIES) values.push(eq < 0 ? "" : pair.slice(eq + 1).trim());
  }
  return { rest: kept.join("; "), values };
}

/**
 * Where the redirect that drops ?hashd-bypass= points, or undefined if the path could be read as
 * another site: `//host` and `/\host` are network-path references to browsers (an open redirect).
 */
export function safeLocation(rest: string): string | undefined {
  return /^\/[/\\]/.test(rest) ? undefined : rest;
}

/**
 * Whether a connection comes from a process on this host: from a loopback address (HASHD_INGRESS
 * is the loopback address when the ingress listens on every address), or from the very address it
 * reached (a process connecting to the host's own address, as HASHD_INGRESS is when the ingress
 * listens on one address; the kernel then picks that address as the source). A peer cannot make a
 * TCP connection from one of this host's addresses: the handshake's answer would never reach it.
 * A reverse proxy on the same host makes every request local: see docs/security.md.
 */
export function isLocalClient(remoteAddress: string, localAddress: string): boolean {
  const remote = unmapped(remoteAddress);
  if (remote === "") return false;
  if (remote.startsWith("127.") || remote === "::1") return true;
  return remote === unmapped(localAddress);
}

/** An IPv4-mapped IPv6 address as its IPv4 form (a dual-stack listener reports those). */
export function unmapped(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}
