import type { RequestHead } from "./http1-head.ts";
import type { Scratch } from "./scratch.ts";

export interface ForwardTo {
  /** path and query the service sees (the /h/<hash> prefix already stripped) */
  path: string;
  /** the stripped /h/<hash> prefix, sent as X-Forwarded-Prefix */
  prefix: string | undefined;
  /** the client's address as this ingress saw it */
  clientAddress: string;
  /**
   * set when forwarding to a peer's ingress: this member's name, the hash resolved here, and the
   * proof (hop-auth.ts) over them and the forwarded headers, without which the peer ignores the hop
   */
  hop?: { member: string; hash: string; proof: string | undefined };
  /** Host to send when an HTTP/1.0 client sent none (the service's own name, <hash>.<zone>) */
  defaultHost?: string;
  /** the client's connection is TLS (the ingress's HTTPS listener): X-Forwarded-Proto https */
  secure?: boolean;
}

/**
 * The X-Forwarded-* values sent upstream: X-Forwarded-For is appended to, as nginx's
 * $proxy_add_x_forwarded_for does; Host and Proto are the client's, unless the request came from
 * a member whose hop proof checked out (then the parser's `hop` is still set, and the peer already
 * replaced what its client sent). The request head writer below writes the same values piece by
 * piece; this string form is what a hop proof signs.
 */
export function forwardedValues(
  head: RequestHead,
  clientAddress: string,
  secure = false,
): { forwardedFor: string; forwardedHost: string; forwardedProto: string } {
  return {
    forwardedFor: head.forwardedFor ? `${head.forwardedFor}, ${clientAddress}` : clientAddress,
    forwardedHost: forwardedHost(head) ?? "",
    forwardedProto: forwardedProto(head, secure),
  };
}

function forwardedHost(head: RequestHead): string | undefined {
  return (head.hop !== undefined && head.forwardedHost) || head.host;
}

/**
 * A proven hop's proto (the first ingress saw the client, over TLS or not); otherwise what this
 * ingress saw: https on its TLS listener, http on the plain one. A client's own header never counts.
 */
function forwardedProto(head: RequestHead, secure: boolean): string {
  return (head.hop !== undefined && head.forwardedProto) || (secure ? "https" : "http");
}

/**
 * Writes the request head sent upstream. Hop-by-hop headers were dropped by the parser; the X-Forwarded-*
 * set is rebuilt here so a client can't pose as another host or prefix (forwardedValues). The
 * framing header is written from what the parser framed the body by (Content-Length or chunked),
 * never copied from the client, so the service always reads the body the ingress sends it.
 *
 * A request for a peer keeps its original target and Host so that the peer's ingress routes it by
 * the same rules, and carries the hash resolved here so that an alias switch between the two hops
 * can't change the version it reaches.
 */
export function writeUpstreamRequestHead(out: Scratch, head: RequestHead, to: ForwardTo): void {
  out.text(head.method);
  out.text(" ");
  out.text(to.hop ? head.target : to.path);
  out.text(head.minor === 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
  out.text(head.passthrough);
  if (head.chunked) out.text("transfer-encoding: chunked\r\n");
  else if (head.contentLength >= 0) field(out, "content-length: ", String(head.contentLength));
  if (head.host === undefined && to.defaultHost !== undefined) field(out, "host: ", to.defaultHost);
  out.text("x-forwarded-for: ");
  if (head.forwardedFor) {
    out.text(head.forwardedFor);
    out.text(", ");
  }
  out.text(to.clientAddress);
  out.text("\r\n");
  const host = forwardedHost(head);
  if (host) field(out, "x-forwarded-host: ", host);
  field(out, "x-forwarded-proto: ", forwardedProto(head, to.secure === true));
  if (to.prefix !== undefined && to.hop === undefined) field(out, "x-forwarded-prefix: ", to.prefix);
  if (to.hop !== undefined) {
    field(out, "x-hashd-hop: ", to.hop.member);
    field(out, "x-hashd-hash: ", to.hop.hash);
    if (to.hop.proof !== undefined) field(out, "x-hashd-hop-auth: ", to.hop.proof);
  }
  if (head.upgrade !== undefined) {
    out.text("connection: upgrade\r\n");
    field(out, "upgrade: ", head.upgrade);
  } else if (head.minor === 0) out.text("connection: close\r\n");
  out.text("\r\n");
}

/** A header line written piece by piece: concatenating would allocate the string this avoids. */
function field(out: Scratch, nameColonSpace: string, value: string): void {
  out.text(nameColonSpace);
  out.text(value);
  out.text("\r\n");
}

const REASONS: Record<number, string> = {
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  404: "Not Found",
  408: "Request Timeout",
  410: "Gone",
  413: "Content Too Large",
  421: "Misdirected Request",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** What an answer of the ingress's own may carry besides its status and message. */
export interface AnswerExtras {
  location?: string;
  /** a Set-Cookie value (access.ts bypassCookieLine) */
  setCookie?: string;
  /** the body as it is (message and a newline otherwise), and its type (text/plain otherwise) */
  body?: { contentType: string; text: string };
}

/** A short response written by the ingress itself (errors, redirects, 410), plain text unless `body` says. */
export function plainResponse(
  status: number,
  message: string,
  options: { close: boolean; hash?: string } & AnswerExtras,
): Buffer {
  const body = Buffer.from(options.body?.text ?? `${message}\n`, "utf8");
  const type = options.body?.contentType ?? "text/plain; charset=utf-8";
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\ncontent-type: ${type}\r\n`;
  head += `content-length: ${body.length}\r\nx-content-type-options: nosniff\r\ncache-control: no-store\r\n`;
  if (options.hash !== undefined) head += `x-hashd-hash: ${options.hash}\r\n`;
  if (options.location !== undefined) head += `location: ${options.location}\r\n`;
  if (options.setCookie !== undefined) head += `set-cookie: ${options.setCookie}\r\n`;
  if (options.close) head += "connection: close\r\n";
  return Buffer.concat([Buffer.from(`${head}\r\n`, "latin1"), body]);
}

/** buf[0, stop) with a header line inserted after the status line, built in out for one write. */
export function writeWithLine(out: Scratch, buf: Buffer, stop: number, line: Buffer): void {
  const statusEnd = buf.indexOf(13) + 2;
  out.bytes(buf, 0, statusEnd);
  out.bytes(line, 0, line.length);
  out.bytes(buf, statusEnd, stop);
}
