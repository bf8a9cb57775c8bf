/**
 * The verdict of one differential-fuzz case. The reference (node:http, strict llhttp) parsed the
 * original bytes; the upstream (node:http again) parsed what the ingress forwarded, one connection
 * per forwarded request (the engine runs the ingress with no idle pool). The rule:
 *
 *   The ingress either refuses a request or forwards exactly one request whose method, target,
 *   version, headers, trailers and body length the reference parsed the same way.
 *
 * In detail, each of these is a finding:
 * - smuggled: an upstream connection carried more than one request. The ingress writes one request
 *   per connection, so a second one was hidden in what it took for a body (or trailers).
 * - upstream-error:<code>: the upstream refused what the ingress forwarded (a parse error other
 *   than the connection ending mid-message, which is how an exchange the ingress cut looks). The
 *   ingress must refuse what a strict parser refuses, not pass it on for the service to judge.
 * - forwarded-refused:<code>: the ingress forwarded request k but the reference refused it (a parse
 *   error, or no-host: an HTTP/1.1 request without Host, which node refuses by default).
 * - extra-request: the ingress forwarded request k and the reference saw no request k at all.
 * - method / target / version / header-* / trailers: request k differs. Headers are compared as
 *   (lowercased name, value) lists without the ones the ingress legitimately rewrites (hop-by-hop,
 *   X-Forwarded-*, X-Hashd-*), without any named in the reference's Connection header (Host
 *   excepted: it must arrive), and without Content-Length and Transfer-Encoding, which the ingress
 *   writes anew: those are compared as framing (framing:<ref>-><upstream>: none, length, chunked)
 *   and body length. An absolute-form target must arrive as origin-form with its authority as Host;
 *   a /h/<hash> prefix must arrive stripped.
 * - body: request k arrived complete upstream but the reference saw a different body length or an
 *   incomplete body; or it arrived incomplete with more body bytes than the reference's.
 *
 * Refusing is always allowed: an ingress answer (4xx/5xx), a close, or never finishing (the ingress
 * waits for bytes that do not come) leave nothing upstream that could disagree. A request the
 * ingress cut mid-body (it refused a malformed chunk after forwarding the first ones) is a prefix
 * of the reference's and passes. When the ingress refuses a request and keeps the connection (a
 * routing error), the reference's request at that position is skipped; requests the reference
 * never got to (after one it refused, or after an upgrade or CONNECT, where node stops parsing
 * HTTP) are not compared.
 *
 * Benign, reported apart and never failing: the upstream refused a method that is a valid token but
 * unknown to llhttp (methods are extensible); framing the reference refuses but RFC 9110 lets a
 * recipient read, which the ingress reads and re-frames (framingNormalized); and an HTTP/1.0
 * keep-alive that llhttp misses for a trailing tab (keptAlive).
 */

export interface ParsedRequest {
  m: string;
  u: string;
  v: string;
  /** node's rawHeaders: name, value, name, value... */
  h: string[];
  /** rawTrailers when the body was complete, else null */
  t: string[] | null;
  /** body bytes (chunk data for chunked bodies) */
  n: number;
  /** the whole message was parsed */
  done: boolean;
  upgrade?: boolean;
}

export interface ParseError {
  code: string;
  reason: string;
  /** where in the read it was found (for the reference: in the bytes sent, which come in one read) */
  at?: number;
  /** the start of that read */
  raw?: string;
}

export interface ConnReport {
  reqs: ParsedRequest[];
  err: ParseError | null;
}

export interface Finding {
  /** e.g. "smuggled", "header-dropped:content-length"; findings with the same class are one bug, probably */
  cls: string;
  message: string;
  benign?: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** how a connection closed mid-message shows in node: not a parse error of what was forwarded */
const TRUNCATION = new Set(["HPE_INVALID_EOF_STATE", "ECONNRESET", "EPIPE"]);
/** rewritten by the ingress (hop-by-hop, or set by it) */
const REWRITTEN = new Set([
  "connection",
  "keep-alive",
  "te",
  "proxy-connection",
  "upgrade",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-prefix",
  "x-hashd-hop",
  "x-hashd-hash",
]);
/** must reach the service exactly as the reference parsed them, whatever Connection says */
const PROTECTED = new Set(["host", "content-length", "transfer-encoding"]);
/**
 * written anew by the ingress from how it framed the body (`content-length: N`, `transfer-encoding:
 * chunked`): compared as framing (none, length or chunked) and body length, not as text
 */
const FRAMING = new Set(["content-length", "transfer-encoding"]);

/** A final response the client got: from the upstream (through the ingress), or the ingress's own. */
export interface ClientResponse {
  status: number;
  upstream: boolean;
  /** it said `connection: close` (the ingress's own answers say so when they end the connection) */
  close: boolean;
}

export function judge(
  ref: ConnReport,
  upstream: ConnReport[],
  responses: ClientResponse[],
  sent: string,
  laneHash: string,
): Finding[] {
  const findings: Finding[] = [];
  const add = (cls: string, message: string, benign = false): void => {
    findings.push(benign ? { cls, message, benign } : { cls, message });
  };

  // the reference's requests up to the first one it refuses
  let refused: string | undefined;
  const expected: ParsedRequest[] = [];
  for (const req of ref.reqs) {
    if (req.v === "1.1" && headerValues(req.h, "host").length === 0) {
      refused = "no-host";
      break;
    }
    expected.push(req);
  }
  if (refused === undefined && ref.err !== null) refused = ref.err.code;

  // the first request of each upstream connection, in the order the ingress sent them
  const forwarded: ParsedRequest[] = [];
  for (const conn of upstream) {
    if (conn.reqs.length > 1) {
      const [first, second] = conn.reqs as [ParsedRequest, ParsedRequest];
      add(
        "smuggled",
        `one upstream connection carried ${conn.reqs.length} requests: ${first.m} ${first.u}, then ${second.m} ${second.u}`,
      );
    }
    if (conn.err !== null && !TRUNCATION.has(conn.err.code)) {
      const method = conn.reqs.length === 0 ? (conn.err.raw ?? "").split(" ")[0] : undefined;
      const unknownMethod =
        conn.err.code === "HPE_INVALID_METHOD" && method !== undefined && TOKEN.test(method);
      add(
        unknownMethod ? "reference-limitation:unknown-method" : `upstream-error:${conn.err.code}`,
        `the upstream refused what the ingress forwarded: ${conn.err.code} (${conn.err.reason})${
          ref.err ? `; the reference: ${ref.err.code}` : "; the reference accepted it"
        }`,
        unknownMethod,
      );
    }
    if (conn.reqs.length > 0) forwarded.push(conn.reqs[0] as ParsedRequest);
  }

  /*
   * Pair forwarded requests with the reference's. The client's responses say which requests the
   * ingress answered itself: one that leaves the connection open (a routing refusal: 404, 421, a
   * 400 for the target) stands for a request that was never forwarded, so the reference's request
   * at that position is skipped; if the reference had refused that request, what follows is past
   * anything the reference parsed and is not compared. An answer of the ingress that closes the
   * connection is the last; it is for a forwarded request (a 502 when the upstream failed, a 400
   * for a malformed chunk) if one is still unpaired. Forwarded requests that got no response (cut
   * off) come last.
   */
  const pairs: [ParsedRequest, number][] = [];
  let r = 0;
  let f = 0;
  let past = false;
  for (let k = 0; k < responses.length && !past; k++) {
    const res = responses[k] as ClientResponse;
    if (res.upstream || (res.close && f < forwarded.length))
      pairs.push([forwarded[f++] as ParsedRequest, r++]);
    else if (r < expected.length && !expected[r]?.upgrade) r++;
    else past = true; // the reference refused this request, or stopped parsing HTTP after it
  }
  if (!past) while (f < forwarded.length) pairs.push([forwarded[f++] as ParsedRequest, r++]);

  for (const [got, index] of pairs) {
    if (got === undefined) {
      add(
        "harness:response-without-request",
        `response ${index + 1} came from the upstream, which reported no request`,
      );
      break;
    }
    const want = expected[index];
    const what = `request ${index + 1} (${got.m} ${JSON.stringify(got.u)})`;
    const normalized = refused === ref.err?.code ? framingNormalized(ref.err, got, sent) : undefined;
    if (want === undefined) {
      if (normalized !== undefined)
        add(`framing-normalized:${normalized.header}`, `${what}: ${normalized.text}`, true);
      else if (refused === "HPE_CLOSED_CONNECTION" && keptAlive(expected[index - 1]))
        add(
          "keep-alive-normalized",
          `${what} was forwarded after an HTTP/1.0 request with Connection: keep-alive and optional whitespace, which llhttp takes for close`,
          true,
        );
      else if (refused !== undefined)
        add(`forwarded-refused:${refused}`, `${what} was forwarded; the reference refused it: ${refused}`);
      else add("extra-request", `${what} was forwarded; the reference saw only ${expected.length}`);
      break;
    }
    if (normalized !== undefined && got.done && !want.done && index === expected.length - 1) {
      add(`framing-normalized:${normalized.header}`, `${what}: ${normalized.text}`, true);
      break;
    }
    if (got.m !== want.m)
      add(
        "method",
        `${what}: method ${JSON.stringify(want.m)} reached the upstream as ${JSON.stringify(got.m)}`,
      );
    if (got.v !== want.v) add("version", `${what}: HTTP/${want.v} reached the upstream as HTTP/${got.v}`);
    const absolute = ABSOLUTE_FORM.exec(want.u);
    const target = absolute ? `${absolute[2]?.startsWith("?") ? "/" : ""}${absolute[2] || "/"}` : want.u;
    if (!sameTarget(target, got.u, laneHash))
      add(
        "target",
        `${what}: target ${JSON.stringify(want.u)} reached the upstream as ${JSON.stringify(got.u)}`,
      );
    compareHeaders(want, got, what, absolute?.[1], add);
    const a = framing(want);
    const b = framing(got);
    if (a !== b) add(`framing:${a}->${b}`, `${what}: framed by ${a} in the reference, by ${b} upstream`);
    if (want.upgrade || got.upgrade) {
      if (!want.upgrade || !got.upgrade)
        add(
          "upgrade",
          `${what}: upgrade ${want.upgrade === true} in the reference, ${got.upgrade === true} upstream`,
        );
      break;
    }
    if (got.done) {
      if (!want.done) add("body", `${what}: complete upstream (${got.n} bytes), incomplete in the reference`);
      else if (got.n !== want.n)
        add("body", `${what}: ${got.n} body bytes upstream, ${want.n} in the reference`);
      else if (JSON.stringify(lowerPairs(got.t ?? [])) !== JSON.stringify(lowerPairs(want.t ?? [])))
        add(
          "trailers",
          `${what}: trailers ${JSON.stringify(got.t)} upstream, ${JSON.stringify(want.t)} in the reference`,
        );
    } else {
      if (want.done && got.n > want.n)
        add("body", `${what}: ${got.n} body bytes upstream (cut), only ${want.n} in the reference`);
      break;
    }
  }
  return findings;
}

/** absolute-form, as the ingress reads it: authority, then path and query */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#@]*)([/?].*)?$/i;

/** How a parsed request's body was framed, by its (parsed) headers. */
function framing(req: ParsedRequest): "chunked" | "length" | "none" {
  if (headerValues(req.h, "transfer-encoding").length > 0) return "chunked";
  return headerValues(req.h, "content-length").length > 0 ? "length" : "none";
}

const FRAMING_ERRORS = new Set([
  "HPE_INVALID_CONTENT_LENGTH",
  "HPE_UNEXPECTED_CONTENT_LENGTH",
  "HPE_INVALID_TRANSFER_ENCODING",
]);

/**
 * llhttp refuses some framing headers that RFC 9110 lets a recipient read, and the ingress reads
 * them and sends its own `content-length: N` / `transfer-encoding: chunked`: a Content-Length that
 * is a list of one value ("5, 5", 8.6) or repeated with the same value, and optional whitespace
 * (SP, HTAB: 5.6.3) around a Content-Length or Transfer-Encoding value ("chunked\t"). Repeated
 * values must be the same text ("02" and "2" are not identical values, 8.6). When the
 * reference refused the request for its framing and the head it refused (found in the bytes sent
 * at the error's offset) reads that way, with one framing only, and the upstream got the request
 * framed so (for a length, N bytes, or fewer if it was cut off), this is not a disagreement but a
 * stricter reference: benign, and nothing after it is compared (the reference stopped there).
 * Returns what was normalized, or undefined.
 */
function framingNormalized(
  err: ParseError | null,
  got: ParsedRequest,
  sent: string,
): { header: string; text: string } | undefined {
  if (err === null || !FRAMING_ERRORS.has(err.code) || err.at === undefined) return undefined;
  const lines = headAround(sent, err.at).split("\r\n").slice(1);
  const values = (name: string): string[] =>
    lines
      .filter((l) => l.slice(0, l.indexOf(":")).toLowerCase() === name)
      .map((l) => l.slice(l.indexOf(":") + 1));
  const lengths = values("content-length");
  const codings = values("transfer-encoding");
  const ows = (v: string): string => v.replace(/^[ \t]+|[ \t]+$/g, "");
  if (lengths.length > 0 && codings.length === 0) {
    const parts = lengths.flatMap((v) => v.split(",")).map(ows);
    const forwarded = headerValues(got.h, "content-length");
    const n = parts[0] as string;
    if (!/^[0-9]{1,15}$/.test(n) || parts.some((p) => p !== n)) return undefined;
    const length = Number(n);
    if (forwarded.length !== 1 || forwarded[0] !== String(length)) return undefined;
    if (got.done ? got.n !== length : got.n > length) return undefined;
    return { header: "content-length", text: `Content-Length ${JSON.stringify(lengths)} read as ${length}` };
  }
  if (codings.length > 0 && lengths.length === 0) {
    const parts = codings.flatMap((v) => v.split(",")).map((v) => ows(v).toLowerCase());
    if (parts.length !== 1 || parts[0] !== "chunked" || framing(got) !== "chunked") return undefined;
    return {
      header: "transfer-encoding",
      text: `Transfer-Encoding ${JSON.stringify(codings)} read as chunked`,
    };
  }
  return undefined;
}

/**
 * llhttp matches Connection tokens without trailing HTAB: an HTTP/1.0 request with `Connection:
 * keep-alive\t` is one after which it takes more bytes for an error (HPE_CLOSED_CONNECTION), while
 * the ingress, trimming optional whitespace (RFC 9110 5.6.3), keeps the connection open. Both read
 * the next request's bytes alike when they read them at all: benign.
 */
function keptAlive(previous: ParsedRequest | undefined): boolean {
  if (previous === undefined || previous.v !== "1.0" || !previous.done) return false;
  const tokens = headerValues(previous.h, "connection").flatMap((v) =>
    v.split(",").map((t) => t.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase()),
  );
  return tokens.includes("keep-alive") && !tokens.includes("close");
}

/** The request head (request line and header lines) in `text` that contains offset `at`, or ends at it. */
function headAround(text: string, at: number): string {
  const end = text.indexOf("\r\n\r\n", Math.max(0, at - 4));
  const stop = end < 0 ? text.length : end;
  const start = text.lastIndexOf("\r\n\r\n", stop - 1);
  return text.slice(start < 0 ? 0 : start + 4, stop);
}

function sameTarget(want: string, got: string, laneHash: string): boolean {
  if (want === got) return true;
  const prefix = `/h/${laneHash}`;
  return want.startsWith(`${prefix}/`) && want.slice(prefix.length) === got;
}

function headerValues(raw: string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === name) values.push(raw[i + 1] as string);
  return values;
}

function lowerPairs(raw: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2)
    pairs.push([(raw[i] as string).toLowerCase(), raw[i + 1] as string]);
  return pairs;
}

/** Header names a Connection header lists, read strictly (OWS = SP/HTAB) and loosely (any trim). */
function connectionNamed(raw: string[]): Set<string> {
  const names = new Set<string>();
  for (const value of headerValues(raw, "connection")) {
    for (const token of value.split(",")) {
      names.add(token.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase());
      names.add(token.trim().toLowerCase());
    }
  }
  for (const name of PROTECTED) names.delete(name);
  return names;
}

/** The private-preview token's cookie name: its pairs are for the ingress, never for a service. */
const BYPASS_COOKIE = "hashd-bypass";

const isBypassPair = (pair: string): boolean => {
  const eq = pair.indexOf("=");
  return (eq < 0 ? pair : pair.slice(0, eq)).trim().toLowerCase() === BYPASS_COOKIE;
};

/**
 * What the service should see of the client's headers, as far as the token goes: Cookie lines
 * without hashd-bypass pairs (the others joined by "; ", the line gone if none is left), and no
 * x-hashd-bypass header. Written here apart from the ingress's code, so the two can disagree.
 */
function withoutBypass(pairs: [string, string][]): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, value] of pairs) {
    if (name === "cookie" && value.split(";").some(isBypassPair)) {
      const rest = value
        .split(";")
        .map((p) => p.trim())
        .filter((p) => p !== "" && !isBypassPair(p));
      if (rest.length > 0) out.push([name, rest.join("; ")]);
    } else out.push([name, value]);
  }
  return out;
}

function compareHeaders(
  want: ParsedRequest,
  got: ParsedRequest,
  what: string,
  authority: string | undefined,
  add: (cls: string, message: string) => void,
): void {
  for (const [name, value] of lowerPairs(got.h)) {
    if (name === "x-hashd-bypass" || (name === "cookie" && value.split(";").some(isBypassPair))) {
      add("token-leaked", `${what}: the service saw ${name}: ${JSON.stringify(value)}`);
      return;
    }
  }
  const hop = connectionNamed(want.h);
  const keep = ([name]: [string, string]): boolean =>
    !REWRITTEN.has(name) &&
    !FRAMING.has(name) &&
    !hop.has(name) &&
    !name.startsWith("x-forwarded-") &&
    !name.startsWith("x-hashd-");
  let a = withoutBypass(lowerPairs(want.h)).filter(keep);
  let b = lowerPairs(got.h).filter(keep);
  if (authority !== undefined) {
    // absolute-form: its authority is the Host the service must see, in place of any Host header
    const hosts = headerValues(got.h, "host");
    if (hosts.length !== 1 || hosts[0] !== authority)
      add(
        "header-changed:host",
        `${what}: absolute-form authority ${JSON.stringify(authority)}, upstream Host ${JSON.stringify(hosts)}`,
      );
    a = a.filter(([name]) => name !== "host");
    b = b.filter(([name]) => name !== "host");
  }
  // an HTTP/1.0 request without Host gets the service's own name from the ingress
  if (headerValues(want.h, "host").length === 0) b = b.filter(([name]) => name !== "host");
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  const count = (pairs: [string, string][]): Map<string, number> => {
    const m = new Map<string, number>();
    for (const [name, value] of pairs) m.set(`${name}\0${value}`, (m.get(`${name}\0${value}`) ?? 0) + 1);
    return m;
  };
  const ca = count(a);
  const cb = count(b);
  const namesA = new Set(a.map(([n]) => n));
  const namesB = new Set(b.map(([n]) => n));
  for (const [key, n] of ca) {
    if ((cb.get(key) ?? 0) >= n) continue;
    const [name, value] = key.split("\0") as [string, string];
    const kind = namesB.has(name) ? "changed" : "dropped";
    add(`header-${kind}:${name}`, `${what}: header ${name}: ${JSON.stringify(value)} ${kind} on the way`);
    return;
  }
  for (const [key, n] of cb) {
    if ((ca.get(key) ?? 0) >= n) continue;
    const [name, value] = key.split("\0") as [string, string];
    const kind = namesA.has(name) ? "changed" : "added";
    add(`header-${kind}:${name}`, `${what}: header ${name}: ${JSON.stringify(value)} ${kind} on the way`);
    return;
  }
  add("header-order", `${what}: headers reordered: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
}
