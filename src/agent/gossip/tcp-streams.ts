/**
 * The TCP side of the adapter: one framed request and one framed reply per connection
 * (stream-frame.ts), with a size bound, a timeout, and partial writes resumed on drain. Knows
 * nothing of sealing or of the protocol: the adapter passes functions in.
 */
import type { Socket, TCPSocketListener } from "bun";
import { FrameReader, frame, PendingWrite } from "./stream-frame.ts";

interface ServerConn {
  reader: FrameReader;
  pending: PendingWrite | null;
}

export interface StreamServer {
  hostname: string;
  port: number;
  maxFrame: number;
  /** The reply payload for a request payload, or null to refuse (the connection is cut). */
  answer(request: Uint8Array): Uint8Array | null;
  onRefused(): void;
  onSocketError(): void;
}

export const listenStreams = (o: StreamServer): TCPSocketListener<ServerConn> =>
  Bun.listen<ServerConn>({
    hostname: o.hostname,
    port: o.port,
    socket: {
      binaryType: "uint8array",
      open: (s) => {
        s.data = { reader: new FrameReader(o.maxFrame), pending: null };
      },
      data: (s, chunk) => {
        const r = s.data.reader.push(chunk);
        if (r.kind === "more") return;
        const reply = r.kind === "frame" ? o.answer(r.payload) : null;
        if (reply === null) {
          o.onRefused();
          s.terminate();
          return;
        }
        s.data.pending = new PendingWrite(frame(reply));
        if (s.data.pending.flush((b) => s.write(b))) s.end();
      },
      drain: (s) => {
        if (s.data.pending?.flush((b) => s.write(b))) s.end();
      },
      error: () => o.onSocketError(),
    },
  });

export interface StreamRequest {
  host: string;
  port: number;
  request: Uint8Array;
  maxFrame: number;
  timeoutMs: number;
  /** The reply payload; return false if it is unacceptable (counts as a failure). */
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
  const reader = new FrameReader(o.maxFrame);
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
        pending = new PendingWrite(frame(o.request));
        pending.flush((b) => s.write(b));
      },
      drain: (s) => {
        pending?.flush((b) => s.write(b));
      },
      data: (s, chunk) => {
        const r = reader.push(chunk);
        if (r.kind === "more") return;
        if (r.kind === "error") return fail();
        if (settled) return;
        // settle before handing over, so the close that follows is not a failure
        const ok = (() => {
          settled = true;
          clearTimeout(timer);
          o.open.delete(s);
          return o.onReply(r.payload);
        })();
        s.end();
        if (!ok) o.onFail(false);
      },
      close: () => fail(),
      error: () => fail(),
      connectError: (_s, error) => failConnect(error),
    },
  }).catch(failConnect);
};
