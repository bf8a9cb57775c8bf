/**
 * Helpers for the ingress tests (internal): real Bun servers on unix sockets in a temp dir stand
 * in for socket-activated services, and raw TCP clients send the bytes that fetch would refuse
 * to send (bad Host, dot segments, oversized heads).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import type { Route, RouteTable } from "../../../src/agent/ingress/types.ts";

export const HASH_A = "0123456789abcdfghijklmnpqrsvwxyz";
export const HASH_B = "zyxwvsrqpnmlkjihgfdcba9876543210";
export const HASH_C = "00000000000000000000000000000000";

export function tempDir(prefix = "hashd-ingress-"): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export type Upstream = Server<unknown>;

/** A Bun HTTP server on a unix socket, as a service behind its systemd socket would be. */
export function startUpstream(
  socketPath: string,
  fetch: (request: Request, server: Upstream) => Response | Promise<Response> | undefined,
  extra: Partial<Bun.ServeOptions> & { websocket?: Bun.WebSocketHandler<unknown> } = {},
): Upstream {
  rmSync(socketPath, { force: true });
  return Bun.serve({
    unix: socketPath,
    fetch,
    maxRequestBodySize: 1024 ** 4,
    ...extra,
  } as Bun.Serve.Options<unknown>);
}

/** A route table over a plain map: hash -> socket path (local) or route. */
export class MapRoutes implements RouteTable {
  readonly routes = new Map<string, Route>();

  local(hash: string, socketPath: string): this {
    this.routes.set(hash, { kind: "local", hash, socketPath });
    return this;
  }

  resolveHash(hash: string): Route {
    return this.routes.get(hash) ?? { kind: "none", hash };
  }
}

export interface RawResponse {
  status: number;
  head: string;
  body: string;
  /** everything received, for tests of pipelining */
  raw: string;
}

/**
 * Sends raw bytes over TCP and collects what comes back until the server closes, `wait` ms pass,
 * or `done(received)` says it has all it needs.
 */
export async function rawExchange(
  port: number,
  bytes: string | Uint8Array,
  wait = 1000,
  done: (received: string) => boolean = () => false,
): Promise<string> {
  return rawConversation(port, bytes, (received) => done(received), wait);
}

/**
 * A raw TCP exchange that answers as it goes: writes `first`, then calls `reply` with everything
 * received so far after each read; `reply` may write more, and returns true once it has what it
 * needs. Resolves with all received when reply says so, the server closes, or `wait` ms pass.
 */
export async function rawConversation(
  port: number,
  first: string | Uint8Array,
  reply: (received: string, write: (bytes: string) => void) => boolean | undefined,
  wait = 3000,
): Promise<string> {
  let received = "";
  const { promise, resolve } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(s, data) {
        received += Buffer.from(data).toString("latin1");
        if (reply(received, (bytes) => s.write(bytes))) resolve();
      },
      close: () => resolve(),
      error: () => resolve(),
    },
  });
  socket.write(first);
  const timer = setTimeout(resolve, wait);
  await promise;
  clearTimeout(timer);
  socket.end();
  return received;
}

/** One request over raw TCP; parses the first response. */
export async function rawRequest(port: number, bytes: string, wait = 1000): Promise<RawResponse> {
  const raw = await rawExchange(port, bytes, wait, complete);
  const split = raw.indexOf("\r\n\r\n");
  const head = split < 0 ? raw : raw.slice(0, split);
  return { status: Number(raw.slice(9, 12)) || 0, head, body: split < 0 ? "" : raw.slice(split + 4), raw };
}

/** A whole response with a Content-Length body has arrived. */
export function complete(raw: string): boolean {
  const split = raw.indexOf("\r\n\r\n");
  const length = /\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, split));
  return split >= 0 && length !== null && raw.length - split - 4 >= Number(length[1]);
}

export function get(target: string, host: string, extra = ""): string {
  return `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
}

/** Resolves when cond() holds, polling; fails after timeoutMs. */
export async function until(cond: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** A fake clock for leases and idle times. */
export class FakeClock {
  constructor(public t = 1_700_000_000_000) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}
