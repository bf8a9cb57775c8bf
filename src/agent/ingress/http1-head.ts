import { MAX_BYPASS_COOKIES, takeBypassCookies } from "./access.ts";

/**
 * Strict HTTP/1.1 message-head parsing for the ingress (RFC 9112). The ingress forwards bodies as
 * bytes, so it must agree exactly with the service on where a request ends: anything ambiguous
 * (both Content-Length and Transfer-Encoding, repeated lengths that differ, codings other than
 * chunked, obs-fold, whitespace before the colon, bare CR or LF, whitespace other than SP and HTAB
 * around a value) is refused instead of guessed at, and the framing header sent upstream is written
 * by the ingress from what it parsed, never passed on as received. That is the request-smuggling
 * defence (RFC 9112 6.3, 11.2); docs/security.md lists each case and its test.
 */

export class HttpParseError extends Error {
  constructor(
    readonly status: 400 | 413 | 431 | 501 | 502 | 505,
    message: string,
  ) {
    super(message);
  }
}

export interface RequestHead {
  method: string;
  target: string;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0 */
  minor: 0 | 1;
  host: string | undefined;
  /** -1 when absent */
  contentLength: number;
  chunked: boolean;
  keepAlive: boolean;
  /** the Upgrade header's value when Connection lists "upgrade" */
  upgrade: string | undefined;
  /** x-hashd-hop: set by a peer ingress that forwarded this request (trusted only with a valid hopProof) */
  hop: string | undefined;
  hopHash: string | undefined;
  /** x-hashd-hop-auth: the forwarding member's proof (hop-auth.ts) */
  hopProof: string | undefined;
  forwardedFor: string | undefined;
  forwardedHost: string | undefined;
  forwardedProto: string | undefined;
  /** x-hashd-bypass: the bypass token (access.ts); never passed on */
  bypass: string | undefined;
  /** the values of hashd-bypass cookies, taken out of the Cookie header passed on */
  bypassCookies: string[] | undefined;
  /** Cookie values that may hold a sticky `hashd-<alias>` cookie (ingress/sticky.ts); passed on too */
  stickyCookies: string | undefined;
  /** Accept (passed on): whether the ingress's own 410 is JSON */
  accept: string | undefined;
  /**
   * the header lines to pass on, each ending in CRLF: all but hop-by-hop, x-forwarded-* / x-hashd-*,
   * and the framing headers (Content-Length, Transfer-Encoding), which upstream-head.ts writes anew;
   * Cookie lines without their hashd-bypass cookies (a service never sees the token's cookie)
   */
  passthrough: string;
}

/** tchar (RFC 9110 5.6.2), as a character class: method and header names here, chunked.ts's bytes */
const TCHAR = "!#$%&'*+\\-.^_`|~0-9A-Za-z";
const TOKEN = new RegExp(`^[${TCHAR}]+$`);
const TOKEN_BYTES = Uint8Array.from({ length: 256 }, (_, c) => (TOKEN.test(String.fromCharCode(c)) ? 1 : 0));

/** Whether byte c is a tchar. */
export function isTokenByte(c: number): boolean {
  return TOKEN_BYTES[c] === 1;
}
/** control characters other than HTAB, and CR or LF that are not part of a CRLF */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const BAD_BYTES = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|[^\r]\n|^\n/;
const DIGITS = /^[0-9]{1,15}$/;
const NOT_REQUEST_LINE = /[\t\x80-\xff]/;
/**
 * Connection tokens that never make a header hop-by-hop: the options the ingress acts on itself, and
 * the headers that frame the message or name its target. A client that lists Content-Length there
 * and sends a body would otherwise have the body forwarded without its length: smuggling.
 */
const IGNORED_CONNECTION_TOKENS = new Set([
  "close",
  "keep-alive",
  "upgrade",
  "",
  "content-length",
  "transfer-encoding",
  "host",
]);
/** absolute-form (RFC 9112 3.2.2): scheme, then an authority without userinfo, then path and query */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#@]*)([/?].*)?$/i;

/** RFC 9110 5.6.3: optional whitespace is SP and HTAB only (String.trim also strips U+00A0 and more). */
export function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** Parses a request head given as a latin1 string without its final CRLFCRLF. */
export function parseRequestHead(head: string): RequestHead {
  if (BAD_BYTES.test(head)) throw new HttpParseError(400, "control character or bare CR/LF in request head");
  let eol = head.indexOf("\r\n");
  if (eol < 0) eol = head.length;
  const line = head.slice(0, eol);
  const sp1 = line.indexOf(" ");
  const sp2 = line.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || line.indexOf(" ", sp2 + 1) >= 0)
    throw new HttpParseError(400, "malformed request line");
  const method = line.slice(0, sp1);
  let target = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  if (!TOKEN.test(method) || method.length > 32) throw new HttpParseError(400, "malformed method");
  if (target.length === 0) throw new HttpParseError(400, "empty request-target");
  // a tab, or a byte outside ASCII (unencoded UTF-8: llhttp refuses it, others pass it on), in the
  // request line; clients percent-encode these
  if (NOT_REQUEST_LINE.test(line)) throw new HttpParseError(400, "tab or non-ASCII byte in request line");
  // absolute-form: its authority replaces the Host header (RFC 9112 3.2.2), the rest is the target
  let authority: string | undefined;
  if (target.charCodeAt(0) !== 47 /* / */) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute !== null) {
      authority = absolute[1] as string;
      if (authority === "") throw new HttpParseError(400, "absolute-form request-target without a host");
      const rest = absolute[2] ?? "/";
      target = rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest;
    }
  }
  let minor: 0 | 1;
  if (version === "HTTP/1.1") minor = 1;
  else if (version === "HTTP/1.0") minor = 0;
  else if (/^HTTP\/\d\.\d$/.test(version))
    throw new HttpParseError(505, `${version} is not supported; use HTTP/1.1`);
  else throw new HttpParseError(400, "malformed request line");
  // the HTTP/2 connection preface's method: never an HTTP/1.1 request (RFC 9113 3.4)
  if (method === "PRI") throw new HttpParseError(400, "PRI is the HTTP/2 preface, not an HTTP/1.1 method");

  const result: RequestHead = {
    method,
    target,
    minor,
    host: undefined,
    contentLength: -1,
    chunked: false,
    keepAlive: minor === 1,
    upgrade: undefined,
    hop: undefined,
    hopHash: undefined,
    hopProof: undefined,
    forwardedFor: undefined,
    forwardedHost: undefined,
    forwardedProto: undefined,
    bypass: undefined,
    bypassCookies: undefined,
    stickyCookies: undefined,
    accept: undefined,
    passthrough: "",
  };
  let connection: string[] | undefined;
  let upgrade: string | undefined;
  let transferEncoding: string | undefined;
  let hostSeen = false;
  // kept lines are copied in runs: most requests drop nothing, and then this is one slice
  let passthrough = "";
  let keepFrom = eol + 2;
  let pos = eol + 2;
  while (pos < head.length) {
    let end = head.indexOf("\r\n", pos);
    if (end < 0) end = head.length;
    const colon = head.indexOf(":", pos);
    if (colon <= pos || colon > end)
      throw new HttpParseError(400, "header line without a name and colon (or obs-fold)");
    const name = head.slice(pos, colon);
    if (!TOKEN.test(name))
      throw new HttpParseError(400, `malformed header name ${JSON.stringify(name.slice(0, 40))}`);
    let keep = false;
    /** a line passed on in place of this one */
    let replacement: string | undefined;
    const lower = name.toLowerCase();
    switch (lower) {
      case "host":
        if (hostSeen) throw new HttpParseError(400, "more than one Host header");
        hostSeen = true;
        result.host = trimOws(head.slice(colon + 1, end)); // absolute-form's authority replaces it below
        keep = authority === undefined;
        break;
      case "content-length":
        result.contentLength = mergeContentLength(result.contentLength, head.slice(colon + 1, end));
        break;
      case "transfer-encoding": {
        const value = trimOws(head.slice(colon + 1, end));
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      }
      case "connection":
        connection = (connection ?? []).concat(
          head
            .slice(colon + 1, end)
            .toLowerCase()
            .split(",")
            .map(trimOws),
        );
        break;
      case "upgrade":
        upgrade = trimOws(head.slice(colon + 1, end));
        break;
      case "x-forwarded-for": {
        const value = trimOws(head.slice(colon + 1, end));
        result.forwardedFor = result.forwardedFor === undefined ? value : `${result.forwardedFor}, ${value}`;
        break;
      }
      case "x-forwarded-host":
        result.forwardedHost = trimOws(head.slice(colon + 1, end));
        break;
      case "x-forwarded-proto":
        result.forwardedProto = trimOws(head.slice(colon + 1, end));
        break;
      case "x-hashd-hop":
        result.hop = trimOws(head.slice(colon + 1, end));
        break;
      case "x-hashd-hash":
        result.hopHash = trimOws(head.slice(colon + 1, end));
        break;
      case "x-hashd-hop-auth":
        result.hopProof = trimOws(head.slice(colon + 1, end));
        break;
      case "x-hashd-bypass":
        result.bypass = trimOws(head.slice(colon + 1, end));
        break;
      case "cookie": {
        const value = head.slice(colon + 1, end);
        const taken = takeBypassCookies(value);
        const rest = taken === undefined ? value : taken.rest;
        if (rest.includes("hashd-"))
          result.stickyCookies =
            result.stickyCookies === undefined ? rest : `${result.stickyCookies}; ${rest}`;
        if (taken === undefined) keep = true;
        else {
          result.bypassCookies = (result.bypassCookies ?? [])
            .concat(taken.values)
            .slice(0, MAX_BYPASS_COOKIES);
          if (taken.rest !== "") replacement = `${name}: ${taken.rest}\r\n`;
        }
        break;
      }
      case "accept":
        result.accept = trimOws(head.slice(colon + 1, end));
        keep = true;
        break;
      case "keep-alive":
      case "proxy-connection":
      case "te":
      case "x-forwarded-prefix":
        break;
      default:
        keep = true;
    }
    if (!keep) {
      passthrough += head.slice(keepFrom, pos);
      keepFrom = end + 2;
      if (replacement !== undefined) passthrough += replacement;
    }
    pos = end + 2;
  }
  if (keepFrom < head.length) passthrough += `${head.slice(keepFrom)}\r\n`;
  if (authority !== undefined) {
    result.host = authority;
    passthrough += `host: ${authority}\r\n`;
  }

  if (transferEncoding !== undefined) {
    if (minor === 0) throw new HttpParseError(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (transferEncoding.toLowerCase() !== "chunked") {
      throw new HttpParseError(501, `Transfer-Encoding ${JSON.stringify(transferEncoding)} is not supported`);
    }
    if (result.contentLength >= 0) throw new HttpParseError(400, "both Content-Length and Transfer-Encoding");
    result.chunked = true;
  }
  if (minor === 1 && !hostSeen) throw new HttpParseError(400, "missing Host header");
  if (connection !== undefined) {
    if (connection.includes("close")) result.keepAlive = false;
    else if (minor === 0 && connection.includes("keep-alive")) result.keepAlive = true;
    if (connection.includes("upgrade") && upgrade !== undefined) result.upgrade = upgrade;
    const named = connection.filter((token) => !IGNORED_CONNECTION_TOKENS.has(token));
    if (named.length > 0) passthrough = dropHeaders(passthrough, new Set(named));
  }
  result.passthrough = passthrough;
  return result;
}

function mergeContentLength(previous: number, value: string): number {
  // a list of identical values ("5, 5") is allowed (RFC 9110 8.6); anything else is refused
  let length = previous;
  for (const part of value.split(",")) {
    const text = trimOws(part);
    // leading zeros are refused: "02" and "2" are one length to some parsers and a conflict to others
    if (!DIGITS.test(text) || (text.length > 1 && text.charCodeAt(0) === 48))
      throw new HttpParseError(400, "malformed Content-Length");
    const parsed = Number(text);
    if (length >= 0 && parsed !== length) throw new HttpParseError(400, "conflicting Content-Length headers");
    length = parsed;
  }
  return length;
}

/** Drops the headers that a Connection header names as hop-by-hop (RFC 9110 7.6.1). */
function dropHeaders(lines: string, names: Set<string>): string {
  return lines
    .split("\r\n")
    .filter((line) => line !== "" && !names.has(line.slice(0, line.indexOf(":")).toLowerCase()))
    .map((line) => `${line}\r\n`)
    .join("");
}
