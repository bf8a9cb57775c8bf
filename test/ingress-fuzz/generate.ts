/**
 * Seeded generator of hostile HTTP/1.1 request streams for the ingress differential fuzz. Each case
 * is a mostly valid request bent in the ways that make request smuggling: Content-Length and
 * Transfer-Encoding variants, Connection naming framing headers, chunk sizes, extensions and
 * trailers with junk and control characters, bare CR/LF, obs-fold, odd methods, targets and
 * versions, and often a second request pipelined behind the body (what one parser sees as two
 * requests must not become something else after the ingress).
 *
 * Case i of seed s is a pure function of (s, i), so any case can be rebuilt from the two numbers
 * that a failure prints. Requests name the service as CANON_HASH; the engine swaps in each lane's
 * own hash (same length, so every Content-Length stays right).
 */
import { Xoshiro128 } from "../../src/lib/prng.ts";

/** The hash in generated requests (replaced per lane); HASH_A of the ingress tests. */
export const CANON_HASH = "0123456789abcdfghijklmnpqrsvwxyz";
/** A well-formed hash that no lane serves (the ingress answers 404 for it). */
export const OTHER_HASH = "zyxwvsrqpnmlkjihgfdcba9876543210";
const HOST = `${CANON_HASH}.localhost`;

export interface FuzzCase {
  index: number;
  /** the bytes to send, one char per byte (latin1) */
  bytes: string;
  /** what was done to the request, for grouping findings */
  tags: string[];
  /** offsets at which the bytes are written in separate writes (to the ingress) */
  splits: number[];
}

/** a value in a tag: a JSON string with every byte outside printable ASCII escaped */
function show(value: string): string {
  return JSON.stringify(value).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

class Gen {
  private readonly rng: Xoshiro128;
  readonly tags: string[] = [];

  constructor(seed: number, index: number) {
    // an independent stream per (seed, index); the first outputs are dropped to spread the state
    this.rng = Xoshiro128.fromState(seed | 0, index | 0, 0x9e3779b9, ~seed ^ Math.imul(index, 0x85ebca6b));
    for (let i = 0; i < 8; i++) this.rng.nextU32();
  }

  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.rng.nextU32() / 4294967296) * n);
  }

  chance(p: number): boolean {
    return this.rng.nextU32() / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  /** picks from [weight, value] pairs */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of items) total += w;
    let r = this.int(total);
    for (const [w, v] of items) {
      if (r < w) return v;
      r -= w;
    }
    return (items[items.length - 1] as readonly [number, T])[1];
  }

  tag(t: string): void {
    this.tags.push(t);
  }

  /** a hostile variant from `list` with probability p (tagged), else `normal` */
  maybe(p: number, tag: string, normal: string, list: readonly string[]): string {
    if (!this.chance(p)) return normal;
    const value = this.pick(list);
    this.tag(`${tag}=${show(value)}`);
    return value;
  }

  word(min = 1, max = 8): string {
    const chars = "abcdefghijklmnopqrstuvwxyz0123456789";
    let s = "";
    const n = min + this.int(max - min + 1);
    for (let i = 0; i < n; i++) s += chars[this.int(chars.length)];
    return s;
  }
}

// ---- the pieces, normal and hostile ----

const METHODS = [
  [30, "GET"],
  [30, "POST"],
  [8, "PUT"],
  [5, "HEAD"],
  [5, "DELETE"],
  [3, "OPTIONS"],
  [5, "PATCH"],
] as const;
const ODD_METHODS = [
  "get",
  "G\x00ET",
  "GET\x0b",
  "G\tET",
  "G(ET",
  "\xe9GET",
  "GET\x7f",
  "POST\xa0",
  "CONNECT",
  "PRI",
  "M-SEARCH",
  "PROPFIND",
  "FOO",
  "X".repeat(40),
  "",
];
const ODD_TARGET_BYTES = [
  "\t",
  "\x00",
  "\x01",
  "\x7f",
  "\x0b",
  "\x0c",
  "\xa0",
  "\xff",
  " ",
  "\r",
  "\n",
  "#",
  '"',
  "\\",
  "%00",
  "%0d%0a",
];
const ODD_TARGETS = [
  `http://${HOST}/abs`,
  `http://${HOST}`,
  "*",
  `${HOST}:80`,
  "//double",
  "",
  "?q",
  "/a/../b",
  "/%2e%2e/b",
];
const ODD_VERSIONS = [
  "HTTP/1.2",
  "HTTP/2.0",
  "HTTP/0.9",
  "http/1.1",
  "HTTP/1.1 ",
  "HTTP/1.1\t",
  "HTTP/01.1",
  "HTTP/1",
  "HTTP/1.10",
  "HTTP/1.1\x00",
  " HTTP/1.1",
  "HTTP/1.1\xa0",
];
const CL_VALUES = (n: number): string[] => [
  ` ${n}`,
  `${n} `,
  `\t${n}`,
  `${n}\t`,
  `\xa0${n}`,
  `${n}\xa0`,
  `\x0b${n}`,
  `${n}\x0c`,
  `+${n}`,
  `-${n}`,
  `0${n}`,
  `00000000000000000${n}`,
  `0x${n.toString(16)}`,
  `${n},${n}`,
  `${n}, ${n}`,
  `${n},${n + 1}`,
  `${n} ${n}`,
  `${n},`,
  `,${n}`,
  "",
  `${n}.0`,
  `${n}e0`,
  "99999999999999999999",
  "18446744073709551621",
  `${n}\x00`,
  `"${n}"`,
];
const TE_VALUES = [
  "Chunked",
  "CHUNKED",
  " chunked",
  "chunked ",
  "\tchunked",
  "chunked\t",
  "chunked\xa0",
  "\xa0chunked",
  "chunked\x0b",
  "\x0cchunked",
  "chunked, chunked",
  "gzip, chunked",
  "chunked, gzip",
  "identity, chunked",
  "chunked, identity",
  "identity",
  "chunked;q=1",
  '"chunked"',
  "chunked,",
  ",chunked",
  "xchunked",
  "chunk",
  "chu\x00nked",
  "chunked\x00",
  "",
  "chunked\r",
];
const TE_NAMES = [
  "transfer-encoding",
  "TRANSFER-ENCODING",
  "Transfer-Encoding ",
  "Transfer-Encoding\t",
  "Transfer_Encoding",
  " Transfer-Encoding",
  "Transfer-Encoding\x00",
  "Transfer-\xa0Encoding",
];
const CL_NAMES = [
  "content-length",
  "CONTENT-LENGTH",
  "Content-Length ",
  "Content-Length\t",
  "Content_Length",
  " Content-Length",
  "\tContent-Length",
];
const CONNECTION_TOKENS = [
  "close",
  "keep-alive",
  "upgrade",
  "content-length",
  "Content-Length",
  "transfer-encoding",
  "host",
  "Host",
  "x-extra",
  "te",
  "expect",
  "foo",
  "content-length\xa0",
  "\xa0content-length",
  "\tcontent-length",
  "content-length ",
  "transfer-encoding\xa0",
  "host\xa0",
  "x-extra\xa0",
  "",
];
const VALUE_JUNK = ["\x00", "\x01", "\x7f", "\x0b", "\x0c", "\x1b", "\r", "\n", "\xa0", "\xff", "\t", " "];
const NAME_JUNK = ["X Bad", "X\x00Bad", "(x)", "x\xa0y", "", "x\ty", "x\x7f", "x@y", "x/y", "\xe9t\xe9"];
const EOLS = ["\n", "\r", "\r\r\n", "\n\r", " \r\n", "\t\r\n", "\r\n\r\n"];
const CHUNK_EXTENSIONS = [
  ";ext",
  ";ext=val",
  ';ext="q v"',
  ';ext="a\\"b"',
  ";ext=\x00",
  ";\x01",
  " ;ext",
  "\t;ext",
  ";ext\t=v",
  ";ext = v",
  ";ext=va\x7f",
  ";ext=\xa0",
  ";",
  ";;",
  ";ext=",
  ';ext="unterminated',
  ";ext=v\r",
  ";e\x00xt",
];
const SIZE_JUNK = [" ", "\t", " junk", "\tjunk", "junk", "\x00", "\xa0", " \t ", "  ;ext", "g", "\x0b", ".0"];
const TRAILERS_OK = ["X-Trailer: v", "X-Trailer: a b", "Expires: 0", "x-t:v", "X-T: \xe9"];
const TRAILERS_BAD = [
  " folded",
  "\tfolded",
  "no colon",
  "X-T : v",
  "X-T\t: v",
  "X-T: a\x00b",
  "X-T: a\x01",
  "X-T: a\x7f",
  ": v",
  "X\x00T: v",
  "X-T: a\rb",
  "X-T: a\nb",
  "X T: v",
  "X-T: \x0b",
  "Content-Length: 5",
  "Transfer-Encoding: chunked",
];

interface Header {
  name: string;
  sep: string;
  value: string;
  eol: string;
}

function line(h: Header): string {
  return `${h.name}${h.sep}${h.value}${h.eol}`;
}

/** One request (head and body) as latin1 text. `depth` > 0 for pipelined followers (fewer extras). */
function request(g: Gen, depth: number): string {
  const hostile = depth === 0 ? 1 : 0.4; // followers are bent less
  let method: string = g.weighted(METHODS);
  if (g.chance(0.04 * hostile)) {
    method = g.pick(ODD_METHODS);
    g.tag(`method=${show(method)}`);
  }

  // target, Host, version
  const viaPrefix = g.chance(0.1);
  let target = `/${g.word(0, 6)}${g.chance(0.3) ? `/${g.word(0, 6)}` : ""}${g.chance(0.2) ? `?${g.word(1, 4)}=${g.word(0, 4)}` : ""}`;
  if (viaPrefix) target = `/h/${CANON_HASH}${target}`;
  if (g.chance(0.06 * hostile)) {
    const junk = g.pick(ODD_TARGET_BYTES);
    const at = 1 + g.int(target.length);
    target = target.slice(0, at) + junk + target.slice(at);
    g.tag(`target-byte=${show(junk)}`);
  } else if (g.chance(0.02 * hostile)) {
    target = g.pick(ODD_TARGETS);
    g.tag(`target=${show(target)}`);
  }
  let version = g.chance(0.1) ? "HTTP/1.0" : "HTTP/1.1";
  if (version === "HTTP/1.0") g.tag("http/1.0");
  version = g.maybe(0.02 * hostile, "version", version, ODD_VERSIONS);
  const sp1 = g.maybe(0.015 * hostile, "sp1", " ", ["  ", "\t", " \t", "\x0b", "\xa0"]);
  const sp2 = g.maybe(0.015 * hostile, "sp2", " ", ["  ", "\t", "\x0b", "\xa0"]);
  const lead = g.maybe(0.015 * hostile, "lead", "", ["\r\n", "\n", "\r\n\r\n", " ", "\t"]);

  const headers: Header[] = [];
  const add = (name: string, value: string, sep = ": "): Header => {
    const h = { name, sep, value, eol: "\r\n" };
    headers.push(h);
    return h;
  };

  // Host
  let host = viaPrefix ? "localhost" : HOST;
  if (g.chance(0.05 * hostile)) {
    host = g.pick([
      `${HOST}:8080`,
      HOST.toUpperCase(),
      `${HOST}.`,
      `\t${HOST}\t`,
      `${HOST}\xa0`,
      `\xa0${HOST}`,
      "",
      `${OTHER_HASH}.localhost`,
      "[::1]",
      `${HOST}:`,
      `${HOST}, ${HOST}`,
      `${HOST}\x00`,
      `${HOST}/x`,
      `${HOST}@evil`,
    ]);
    g.tag(`host=${show(host)}`);
  }
  if (!g.chance(0.03 * hostile)) add(g.chance(0.1) ? "host" : "Host", host);
  else g.tag("no-host");
  if (g.chance(0.02 * hostile)) {
    add("Host", g.pick([host, `${OTHER_HASH}.localhost`, "localhost"]));
    g.tag("duplicate-host");
  }

  // a few ordinary headers
  const extras = g.int(3);
  for (let i = 0; i < extras; i++) {
    add(
      g.pick(["User-Agent", "Accept", "X-Extra", "x-extra", "Cookie", "Accept-Encoding", "X-Req"]),
      g.word(1, 12),
    );
  }
  // the private-preview token (access.ts): the service must never see it, by header or cookie
  if (g.chance(0.04 * hostile)) {
    add(g.pick(["X-Hashd-Bypass", "x-hashd-bypass", "X-HASHD-BYPASS"]), g.word(1, 40));
    g.tag("bypass-header");
  }
  if (g.chance(0.05 * hostile)) {
    const cookie = g.pick([
      "hashd-bypass=v1.1.abc",
      "HASHD-Bypass=tok; a=b",
      "a=b; hashd-bypass",
      " hashd-bypass = tok ;x=y",
      "hashd-bypass=1; hashd-bypass=2; hashd-bypass=3; hashd-bypass=4; hashd-bypass=5; keep=1",
      "a=b;;hashd-bypass=;c=d",
      "hashd-bypassx=not-the-token",
      "xhashd-bypass=not-the-token; hashd-bypass=t",
      "hashd%2dbypass=t",
      "a=hashd-bypass",
      // sticky cookies (sticky.ts) beside the token's: read by the ingress, passed on as they are
      "hashd-prod=0123456789abcdfghijklmnpqrsvwxyz",
      "hashd-prod=0123456789abcdfghijklmnpqrsvwxyz; hashd-bypass=t; hashd-api=x",
      "hashd-=x; hashd-prod=; hashd-prod=../../x",
      "hashd-prod=a; hashd-prod=b; hashd-prod=c; hashd-prod=d; hashd-prod=e; hashd-prod=f",
    ]);
    add("Cookie", cookie);
    g.tag(`bypass-cookie=${show(cookie)}`);
  }
  if (g.chance(0.05)) add("Keep-Alive", "timeout=5");
  if (g.chance(0.05)) add("TE", g.pick(["trailers", "gzip", "chunked"]));
  if (g.chance(0.03)) add("Proxy-Connection", "keep-alive");
  if (g.chance(0.05)) add("X-Forwarded-For", "10.0.0.1");
  if (g.chance(0.02)) add("X-Forwarded-Prefix", "/evil");
  if (g.chance(0.05 * hostile)) {
    add("Expect", g.pick(["100-continue", "100-Continue", "foo", "100-continue, foo"]));
    g.tag("expect");
  }
  if (g.chance(0.02 * hostile)) {
    add("Upgrade", g.pick(["websocket", "h2c", "foo"]));
    g.tag("upgrade");
  }

  // body and framing
  const kind = g.weighted([
    [35, "none"],
    [35, "length"],
    [30, "chunked"],
  ] as const);
  let data = "";
  if (kind !== "none") {
    data = g.weighted([
      [6, () => g.word(0, 30)],
      [3, () => `GET /smuggled HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
      [1, () => `GET /smuggled HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 10\r\n\r\n`],
      [1, () => "0\r\n\r\n"],
      [1, () => `\r\n${g.word(0, 5)}\x00\xff\n`],
    ] as const)();
  }
  let body = "";
  if (kind === "length") {
    let declared = data.length;
    if (g.chance(0.08 * hostile)) {
      declared = Math.max(0, declared + g.pick([-5, -2, -1, 1, 2, 5, 40]));
      g.tag(`length-off=${declared - data.length}`);
    }
    const name = g.maybe(0.04 * hostile, "cl-name", "Content-Length", CL_NAMES);
    const value = g.maybe(0.25 * hostile, "cl-value", String(declared), CL_VALUES(declared));
    add(name, value);
    if (g.chance(0.05 * hostile)) {
      const second = g.pick([String(declared), String(declared + 1), `${declared}, ${declared}`, "0"]);
      add(g.pick(["Content-Length", "content-length"]), second);
      g.tag(`cl-twice=${show(second)}`);
    }
    if (g.chance(0.06 * hostile)) {
      add(g.pick(["Transfer-Encoding", ...TE_NAMES]), g.pick(["chunked", ...TE_VALUES]));
      g.tag("cl+te");
    }
    body = data;
  } else if (kind === "chunked") {
    const name = g.maybe(0.05 * hostile, "te-name", "Transfer-Encoding", TE_NAMES);
    const value = g.maybe(0.25 * hostile, "te-value", "chunked", TE_VALUES);
    add(name, value);
    if (g.chance(0.04 * hostile)) {
      add("Transfer-Encoding", g.pick(["chunked", "gzip", "identity", ""]));
      g.tag("te-twice");
    }
    if (g.chance(0.06 * hostile)) {
      add(g.pick(["Content-Length", ...CL_NAMES]), g.pick(["0", String(data.length), "5", " 3"]));
      g.tag("te+cl");
    }
    body = chunkedBody(g, data, hostile);
  } else if (g.chance(0.03 * hostile)) {
    add("Content-Length", g.pick(["0", "", " 0", "0\xa0"]));
    g.tag("cl-no-body");
  }

  // Connection naming other headers (hop-by-hop) or framing headers
  if (g.chance(0.2 * hostile)) {
    const n = 1 + g.int(3);
    const tokens: string[] = [];
    for (let i = 0; i < n; i++) tokens.push(g.pick(CONNECTION_TOKENS));
    const value = tokens.join(g.pick([", ", ",", " , ", ",\t"]));
    const at = g.int(headers.length + 1);
    headers.splice(at, 0, { name: g.pick(["Connection", "connection"]), sep: ": ", value, eol: "\r\n" });
    if (tokens.includes("x-extra") && g.chance(0.7)) add("X-Extra", "hop");
    g.tag(`connection=${show(value)}`);
  }

  // header-line mutations
  if (headers.length > 0 && g.chance(0.05 * hostile)) {
    const at = g.int(headers.length);
    headers.splice(at + 1, 0, {
      name: g.pick([" folded", "\tfolded", " ", "\t"]),
      sep: "",
      value: "",
      eol: "\r\n",
    });
    g.tag("obs-fold");
  }
  if (headers.length > 0 && g.chance(0.04 * hostile)) {
    const h = g.pick(headers);
    h.sep = g.pick([" : ", "\t: ", " :", ":", ":\t", ":  ", "::", ": :"]);
    g.tag(`sep=${show(h.sep)}`);
  }
  if (g.chance(0.03 * hostile)) {
    const name = g.pick(NAME_JUNK);
    headers.splice(g.int(headers.length + 1), 0, { name, sep: ": ", value: "v", eol: "\r\n" });
    g.tag(`bad-name=${show(name)}`);
  }
  if (headers.length > 0 && g.chance(0.05 * hostile)) {
    const h = g.pick(headers);
    const junk = g.pick(VALUE_JUNK);
    const at = g.int(h.value.length + 1);
    h.value = h.value.slice(0, at) + junk + h.value.slice(at);
    g.tag(`value-byte=${show(junk)}@${h.name.trim().toLowerCase()}`);
  }
  if (headers.length > 0 && g.chance(0.04 * hostile)) {
    const h = g.pick(headers);
    h.eol = g.pick(EOLS);
    g.tag(`eol=${show(h.eol)}`);
  }
  const lineEnd = g.maybe(0.01 * hostile, "request-line-eol", "\r\n", EOLS);
  const headEnd = g.maybe(0.015 * hostile, "head-end", "\r\n", ["\n", "\r", "\r\r\n", " \r\n"]);

  return `${lead}${method}${sp1}${target}${sp2}${version}${lineEnd}${headers.map(line).join("")}${headEnd}${body}`;
}

function chunkedBody(g: Gen, data: string, hostile: number): string {
  const parts: string[] = [];
  let rest = data;
  while (rest.length > 0) {
    const n = g.chance(0.5) ? rest.length : 1 + g.int(rest.length);
    parts.push(rest.slice(0, n));
    rest = rest.slice(n);
  }
  let out = "";
  for (const part of parts) {
    let size = part.length.toString(16);
    if (g.chance(0.2)) size = size.toUpperCase();
    if (g.chance(0.05 * hostile)) {
      size = g.pick([`0${size}`, `000000000000000${size}`, `0x${size}`, `+${size}`, `-${size}`, ` ${size}`]);
      g.tag(`chunk-size=${show(size)}`);
    }
    if (g.chance(0.04 * hostile)) {
      const delta = g.pick([-1, 1, 2, -2]);
      size = Math.max(0, part.length + delta).toString(16);
      g.tag(`chunk-size-off=${delta}`);
    }
    if (g.chance(0.1 * hostile)) {
      const junk = g.pick(SIZE_JUNK);
      size += junk;
      g.tag(`size-junk=${show(junk)}`);
    }
    if (g.chance(0.12 * hostile)) {
      const ext = g.pick(CHUNK_EXTENSIONS);
      size += ext;
      g.tag(`chunk-ext=${show(ext)}`);
    } else if (g.chance(0.05)) size += ";name=value";
    const sizeEol = g.maybe(0.03 * hostile, "size-eol", "\r\n", ["\n", "\r", "\r\r\n", " \r\n"]);
    const dataEol = g.maybe(0.03 * hostile, "data-eol", "\r\n", ["\n", "\r", "", "x\r\n", "\r\n\r\n"]);
    out += `${size}${sizeEol}${part}${dataEol}`;
  }
  let last = "0";
  if (g.chance(0.08 * hostile)) {
    last = g.pick(["00", "0;ext", "0 ", "0\t", "000000000000000", "0;ext=\x00", "0\tjunk", "0x0", " 0"]);
    g.tag(`last-chunk=${show(last)}`);
  }
  out += `${last}\r\n`;
  if (g.chance(0.2)) {
    const n = 1 + g.int(2);
    for (let i = 0; i < n; i++) {
      if (g.chance(0.5 * hostile)) {
        const bad = g.pick(TRAILERS_BAD);
        out += `${bad}\r\n`;
        g.tag(`trailer=${show(bad)}`);
      } else out += `${g.pick(TRAILERS_OK)}${g.maybe(0.05 * hostile, "trailer-eol", "\r\n", ["\n", "\r"])}`;
    }
  }
  out += g.maybe(0.04 * hostile, "final-crlf", "\r\n", ["", "\n", "\r", "\r\r\n", "\n\r\n"]);
  return out;
}

const FOLLOWERS = [
  [6, () => `GET /next HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  [2, () => `POST /next HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 3\r\n\r\nabc`],
  [1, () => `GET /next HTTP/1.1\r\nHost: ${HOST}\r\n`],
  [1, () => "0\r\n\r\n"],
  [1, () => "\r\n"],
  [1, () => `GET /next HTTP/1.1\r\nHost: ${OTHER_HASH}.localhost\r\n\r\n`],
  [1, () => `GET /next HTTP/1.0\r\n\r\n`],
] as const;

/** Case `index` of `seed`. */
export function generateCase(seed: number, index: number): FuzzCase {
  const g = new Gen(seed, index);
  let bytes = request(g, 0);
  // pipelined followers: what comes after the body is where a framing disagreement shows
  if (g.chance(0.55)) {
    const generated = g.chance(0.3);
    bytes += generated ? request(g, 1) : g.weighted(FOLLOWERS)();
    g.tag(generated ? "pipelined-generated" : "pipelined");
    if (g.chance(0.15)) bytes += g.weighted(FOLLOWERS)();
  }
  const splits: number[] = [];
  if (g.chance(0.2)) {
    const n = 1 + g.int(3);
    for (let i = 0; i < n; i++) splits.push(1 + g.int(Math.max(1, bytes.length - 1)));
    splits.sort((a, b) => a - b);
  }
  return { index, bytes, tags: g.tags, splits: [...new Set(splits)] };
}
