/**
 * Strict HTTP/1.1 message-head parsing for the ingress (RFC 9112). The ingress forwards bodies as
 * bytes with their original framing, so it must agree exactly with the service on where a request
 * ends: anything ambiguous (both Content-Length and Transfer-Encoding, repeated lengths that differ,
 * codings other than chunked, obs-fold, whitespace before the colon, bare CR or LF) is refused
 * instead of guessed at. That is the request-smuggling defence (RFC 9112 6.3, 11.2).
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
  /** x-hashd-hop: set by a peer ingress that forwarded this request */
  hop: string | undefined;
  hopHash: string | undefined;
  forwardedFor: string | undefined;
  forwardedHost: string | undefined;
  forwardedProto: string | undefined;
  /** the header lines to pass on, each ending in CRLF: all but hop-by-hop and x-forwarded-* / x-hashd-* */
  passthrough: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** control characters other than HTAB, and CR or LF that are not part of a CRLF */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const BAD_BYTES = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|[^\r]\n|^\n/;
const DIGITS = /^[0-9]{1,15}$/;
const IGNORED_CONNECTION_TOKENS = new Set(["close", "keep-alive", "upgrade", ""]);

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
  const target = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  if (!TOKEN.test(method) || method.length > 32) throw new HttpParseError(400, "malformed method");
  if (target.length === 0) throw new HttpParseError(400, "empty request-target");
  let minor: 0 | 1;
  if (version === "HTTP/1.1") minor = 1;
  else if (version === "HTTP/1.0") minor = 0;
  else if (/^HTTP\/\d\.\d$/.test(version))
    throw new HttpParseError(505, `${version} is not supported; use HTTP/1.1`);
  else throw new HttpParseError(400, "malformed request line");

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
    forwardedFor: undefined,
    forwardedHost: undefined,
    forwardedProto: undefined,
    passthrough: "",
  };
  let connection: string[] | undefined;
  let upgrade: string | undefined;
  let transferEncoding: string | undefined;
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
    const lower = name.toLowerCase();
    switch (lower) {
      case "host":
        if (result.host !== undefined) throw new HttpParseError(400, "more than one Host header");
        result.host = head.slice(colon + 1, end).trim();
        keep = true;
        break;
      case "content-length":
        result.contentLength = mergeContentLength(result.contentLength, head.slice(colon + 1, end).trim());
        keep = true;
        break;
      case "transfer-encoding": {
        const value = head.slice(colon + 1, end).trim();
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        keep = true;
        break;
      }
      case "connection":
        connection = (connection ?? []).concat(
          head
            .slice(colon + 1, end)
            .toLowerCase()
            .split(",")
            .map((token) => token.trim()),
        );
        break;
      case "upgrade":
        upgrade = head.slice(colon + 1, end).trim();
        break;
      case "x-forwarded-for": {
        const value = head.slice(colon + 1, end).trim();
        result.forwardedFor = result.forwardedFor === undefined ? value : `${result.forwardedFor}, ${value}`;
        break;
      }
      case "x-forwarded-host":
        result.forwardedHost = head.slice(colon + 1, end).trim();
        break;
      case "x-forwarded-proto":
        result.forwardedProto = head.slice(colon + 1, end).trim();
        break;
      case "x-hashd-hop":
        result.hop = head.slice(colon + 1, end).trim();
        break;
      case "x-hashd-hash":
        result.hopHash = head.slice(colon + 1, end).trim();
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
    }
    pos = end + 2;
  }
  if (keepFrom < head.length) passthrough += `${head.slice(keepFrom)}\r\n`;

  if (transferEncoding !== undefined) {
    if (minor === 0) throw new HttpParseError(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (transferEncoding.toLowerCase() !== "chunked") {
      throw new HttpParseError(501, `Transfer-Encoding ${JSON.stringify(transferEncoding)} is not supported`);
    }
    if (result.contentLength >= 0) throw new HttpParseError(400, "both Content-Length and Transfer-Encoding");
    result.chunked = true;
  }
  if (minor === 1 && result.host === undefined) throw new HttpParseError(400, "missing Host header");
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
    const text = part.trim();
    if (!DIGITS.test(text)) throw new HttpParseError(400, "malformed Content-Length");
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
