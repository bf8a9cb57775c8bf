import type { RequestHead } from "./http1-head.ts";

export interface ForwardTo {
  /** path and query the service sees (the /h/<hash> prefix already stripped) */
  path: string;
  /** the stripped /h/<hash> prefix, sent as X-Forwarded-Prefix */
  prefix: string | undefined;
  /** the client's address as this ingress saw it */
  clientAddress: string;
  /** set when forwarding to a peer's ingress: this member's name and the hash resolved here */
  hop?: { member: string; hash: string };
  /** Host to send when an HTTP/1.0 client sent none (the service's own name, <hash>.<zone>) */
  defaultHost?: string;
}

/**
 * The request head sent upstream. Hop-by-hop headers were dropped by the parser; the X-Forwarded-*
 * set is rebuilt here so a client can't pose as another host or prefix. A peer ingress's
 * X-Forwarded-Host and -Proto (marked by the hop header) are kept: they describe the original
 * client, and the peer already replaced what that client sent. X-Forwarded-For is appended to, as
 * nginx's $proxy_add_x_forwarded_for does.
 *
 * A request for a peer keeps its original target and Host so that the peer's ingress routes it by
 * the same rules, and carries the hash resolved here so that an alias switch between the two hops
 * can't change the version it reaches.
 */
export function upstreamRequestHead(head: RequestHead, to: ForwardTo): string {
  const target = to.hop ? head.target : to.path;
  let out = `${head.method} ${target} HTTP/1.${head.minor}\r\n${head.passthrough}`;
  if (head.host === undefined && to.defaultHost !== undefined) out += `host: ${to.defaultHost}\r\n`;
  const forwardedFor = head.forwardedFor ? `${head.forwardedFor}, ${to.clientAddress}` : to.clientAddress;
  out += `x-forwarded-for: ${forwardedFor}\r\n`;
  const fromPeer = head.hop !== undefined;
  const forwardedHost = (fromPeer && head.forwardedHost) || head.host;
  if (forwardedHost) out += `x-forwarded-host: ${forwardedHost}\r\n`;
  out += `x-forwarded-proto: ${(fromPeer && head.forwardedProto) || "http"}\r\n`;
  if (to.prefix !== undefined && to.hop === undefined) out += `x-forwarded-prefix: ${to.prefix}\r\n`;
  if (to.hop !== undefined) out += `x-hashd-hop: ${to.hop.member}\r\nx-hashd-hash: ${to.hop.hash}\r\n`;
  if (head.upgrade !== undefined) out += `connection: upgrade\r\nupgrade: ${head.upgrade}\r\n`;
  else if (head.minor === 0) out += "connection: close\r\n";
  return `${out}\r\n`;
}

const REASONS: Record<number, string> = {
  308: "Permanent Redirect",
  400: "Bad Request",
  404: "Not Found",
  408: "Request Timeout",
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

/** A short plain-text response written by the ingress itself (errors, the /h/<hash> redirect). */
export function plainResponse(
  status: number,
  message: string,
  options: { close: boolean; hash?: string; location?: string },
): Buffer {
  const body = Buffer.from(`${message}\n`, "utf8");
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\ncontent-type: text/plain; charset=utf-8\r\n`;
  head += `content-length: ${body.length}\r\nx-content-type-options: nosniff\r\ncache-control: no-store\r\n`;
  if (options.hash !== undefined) head += `x-hashd-hash: ${options.hash}\r\n`;
  if (options.location !== undefined) head += `location: ${options.location}\r\n`;
  if (options.close) head += "connection: close\r\n";
  return Buffer.concat([Buffer.from(`${head}\r\n`, "latin1"), body]);
}

/** buf[0, stop) with a header line inserted after the status line, in one buffer for one write. */
export function insertLine(buf: Buffer, stop: number, line: Buffer): Buffer {
  const statusEnd = buf.indexOf(13) + 2;
  const out = Buffer.allocUnsafe(stop + line.length);
  buf.copy(out, 0, 0, statusEnd);
  line.copy(out, statusEnd);
  buf.copy(out, statusEnd + line.length, statusEnd, stop);
  return out;
}
