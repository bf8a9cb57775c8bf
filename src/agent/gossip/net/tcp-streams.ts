/**
 * The TCP side of the adapter: one framed request and one framed reply per connection
 * (stream-frame.ts), partial writes resumed on drain. The adapter passes in the sealing (a
 * FrameSeal) and the protocol (plaintext request in, plaintext reply out).
 *
 * The server takes nothing on trust from a peer that has not shown the key, and bounds what one
 * that has can cost:
 *
 * - a connection must deliver its sealed header within `headerTimeoutMs` of being accepted, and is
 *   cut `connectionTimeoutMs` after it was accepted whatever it is doing (its request half sent,
 *   our reply half read): the requester gives up at its own stream timeout anyway, so this is the
 *   node's streamTimeoutMs by default. Deadlines, not idle timeouts: a trickle does not renew them;
 * - until its header opens, a connection holds at most the header's 34 bytes; a header that does
 *   not open cuts the connection at once;
 * - at most `maxConnections` connections at once, `maxConnectionsPerHost` from one source address;
 *   more are cut as they are accepted;
 * - authenticated headers may declare at most `maxBufferedBytes` of bodies being received at once,
 *   over all connections (a key holder's 16 connections of the largest frame are not all taken).
 */
import type { Socket, TCPSocketListener } from "bun";
import {
  FRAME_REPLY,
  FRAME_REQUEST,
  FrameReader,
  type FrameSeal,
  PendingWrite,
} from "../wire/stream-frame.ts";

export interface StreamLimits {
  /** The sealed header must have arrived this long after the connection was accepted. */
  headerTimeoutMs: number;
  /** The connection is cut this long after it was accepted, whatever it is doing. */
  connectionTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerHost: number;
  /** Body bytes that authenticated headers may announce at once, over all connections. */
  maxBufferedBytes: number;
}

/** Defaults; `connectionTimeoutMs` and `maxBufferedBytes` follow the node's config (udp-adapter.ts). */
export const DEFAULT_STREAM_LIMITS = {
  // the header is the first 34 bytes the requester writes as soon as it is connected: 5 s covers
  // a few retransmissions of that first segment
  headerTimeoutMs: 5000,
  // a member has a few streams to one peer at a time (push-pull, up to maxConcurrentFetches
  // fetches, a fallback ping); a cluster of 1,000 has ~1 push-pull arriving per member per 30 s
  maxConnections: 128,
  maxConnectionsPerHost: 16,
} as const;

export interface StreamServerStats {
  /** Connections open now. */
  open: number;
  /** Connections cut as accepted (too many, or too many from one address), or for a body over budget. */
  overLimit: number;
  /** Connections cut at a deadline. */
  timedOut: number;
  /** Connections cut because their header did not open (no key, or not a frame at all). */
  unauthenticated: number;
  /** Request bytes held now, and the most ever held at once, over all connections. */
  buffered: number;
  peakBuffered: number;
}

interface ServerConn {
  host: string;
  counted: boolean;
  reader: FrameReader;
  pending: PendingWrite | null;
  headerTimer: ReturnType<typeof setTimeout> | null;
  deadline: ReturnType<typeof setTimeout> | null;
  /** Bytes of this connection counted in stats.buffered. */
  held: number;
  /** Body bytes its header announced, counted against maxBufferedBytes. */
  reserved: number;
}

export interface StreamServer {
  hostname: string;
  port: number;
  /** Largest sealed body accepted. */
  maxBody: number;
  limits: StreamLimits;
  seal: FrameSeal;
  /** The reply to a (plaintext) request, or null to refuse (the connection is cut). */
  answer(request: Uint8Array): Uint8Array | null;
  /** A stream cut without a reply (any reason). */
  onRefused(): void;
  onSocketError(): void;
}

export interface ListeningStreams {
  listener: TCPSocketListener<ServerConn>;
  stats: StreamServerStats;
  stop(): void;
}

export const listenStreams = (o: StreamServer): ListeningStreams => {
  const stats: StreamServerStats = {
    open: 0,
    overLimit: 0,
    timedOut: 0,
    unauthenticated: 0,
    buffered: 0,
    peakBuffered: 0,
  };
  const perHost = new Map<string, number>();
  const conns = new Set<Socket<ServerConn>>();
  let reserved = 0;
  const { limits } = o;

  const account = (c: ServerConn): void => {
    const now = c.reader.buffered;
    stats.buffered += now - c.held;
    c.held = now;
    if (stats.buffered > stats.peakBuffered) stats.peakBuffered = stats.buffered;
  };
  const release = (c: ServerConn): void => {
    stats.buffered -= c.held;
    c.held = 0;
    reserved -= c.reserved;
    c.reserved = 0;
  };
  const cut = (s: Socket<ServerConn>): void => {
    release(s.data);
    o.onRefused();
    s.terminate();
  };

  const listener = Bun.listen<ServerConn>({
    hostname: o.hostname,
    port: o.port,
    socket: {
      binaryType: "uint8array",
      open: (s) => {
        const host = s.remoteAddress;
        s.data = {
          host,
          counted: false,
          reader: new FrameReader(o.seal, FRAME_REQUEST, o.maxBody),
          pending: null,
          headerTimer: null,
          deadline: null,
          held: 0,
          reserved: 0,
        };
        const fromHost = perHost.get(host) ?? 0;
        if (stats.open >= limits.maxConnections || fromHost >= limits.maxConnectionsPerHost) {
          stats.overLimit++;
          o.onRefused();
          s.terminate();
          return;
        }
        s.data.counted = true;
        stats.open++;
        perHost.set(host, fromHost + 1);
        conns.add(s);
        s.data.headerTimer = setTimeout(() => {
          s.data.headerTimer = null;
          if (s.data.reader.length >= 0) return;
          stats.timedOut++;
          cut(s);
        }, limits.headerTimeoutMs);
        s.data.deadline = setTimeout(() => {
          s.data.deadline = null;
          stats.timedOut++;
          cut(s);
        }, limits.connectionTimeoutMs);
      },
      data: (s, chunk) => {
        const c = s.data;
        if (!c.counted) return;
        const authenticatedBefore = c.reader.length >= 0;
        const r = c.reader.push(chunk);
        if (!authenticatedBefore && c.reader.length >= 0) {
          if (c.headerTimer !== null) clearTimeout(c.headerTimer);
          c.headerTimer = null;
          if (reserved + c.reader.length > limits.maxBufferedBytes) {
            stats.overLimit++;
            cut(s);
            return;
          }
          c.reserved = c.reader.length;
          reserved += c.reserved;
        }
        account(c);
        if (r.kind === "more") return;
        if (r.kind === "error") {
          if (!r.authenticated) stats.unauthenticated++;
          cut(s);
          return;
        }
        const request = o.seal.openBody(r.body);
        release(c);
        if (request === null) {
          cut(s);
          return;
        }
        const reply = o.answer(request);
        if (reply === null) {
          cut(s);
          return;
        }
        c.pending = new PendingWrite(o.seal.frame(FRAME_REPLY, reply));
        if (c.pending.flush((b) => s.write(b))) s.end();
      },
      drain: (s) => {
        if (s.data.pending?.flush((b) => s.write(b))) s.end();
      },
      close: (s) => {
        const c = s.data;
        if (c === undefined || !c.counted) return;
        c.counted = false;
        if (c.headerTimer !== null) clearTimeout(c.headerTimer);
        if (c.deadline !== null) clearTimeout(c.deadline);
        release(c);
        conns.delete(s);
        stats.open--;
        const n = (perHost.get(c.host) ?? 1) - 1;
        if (n > 0) perHost.set(c.host, n);
        else perHost.delete(c.host);
      },
      error: () => o.onSocketError(),
    },
  });
  return {
    listener,
    stats,
    stop: () => {
      for (const s of conns) s.terminate();
      listener.stop(true);
    },
  };
};

export interface StreamRequest {
  host: string;
  port: number;
  /** The plaintext request. */
  request: Uint8Array;
  seal: FrameSeal;
  /** Largest sealed reply body accepted. */
  maxBody: number;
  timeoutMs: number;
  /** The plaintext reply; return false if it is unacceptable (counts as a failure). */
  onReply(reply: Uint8Array): boolean;
  /**
   * Connection refused or cut, bad frame, timeout: called at most once, never with onReply.
   * `refused`: the peer's host answered the connect with a reset (nothing listens on the port).
   */
  onFail(refused: boolean): void;
  /** Open client sockets, so the adapter can cut them when it stops. */
  open: Set<Socket<unknown>>;
}

export const requestStream = (o: StreamRequest): void => {
  const reader = new FrameReader(o.seal, FRAME_REPLY, o.maxBody);
  let settled = false;
  let sock: Socket<unknown> | null = null;
  let pending: PendingWrite | null = null;
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    if (sock !== null) o.open.delete(sock);
    return true;
  };
  const fail = (refused = false) => {
    if (!settle()) return;
    sock?.terminate();
    o.onFail(refused);
  };
  const failConnect = (error: unknown) =>
    fail((error as { code?: string } | undefined)?.code === "ECONNREFUSED");
  const timer = setTimeout(fail, o.timeoutMs);
  Bun.connect<unknown>({
    hostname: o.host,
    port: o.port,
    socket: {
      binaryType: "uint8array",
      open: (s) => {
        // Connected after the timeout (a SYN retransmitted past a partition): the request is
        // stale and nobody waits for its reply, so it is not sent.
        if (settled) {
          s.terminate();
          return;
        }
        sock = s;
        o.open.add(s);
        pending = new PendingWrite(o.seal.frame(FRAME_REQUEST, o.request));
        pending.flush((b) => s.write(b));
      },
      drain: (s) => {
        pending?.flush((b) => s.write(b));
      },
      data: (s, chunk) => {
        if (settled) return;
        const r = reader.push(chunk);
        if (r.kind === "more") return;
        if (r.kind === "error") return fail();
        const reply = o.seal.openBody(r.body);
        if (reply === null) return fail();
        // settle before handing over, so the close that follows is not a failure
        settle();
        const ok = o.onReply(reply);
        s.end();
        if (!ok) o.onFail(false);
      },
      close: () => fail(),
      error: () => fail(),
      connectError: (_s, error) => failConnect(error),
    },
  }).catch(failConnect);
};
