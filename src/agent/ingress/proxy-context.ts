import type { HopAuth } from "./hop-auth.ts";
import type { InFlight } from "./inflight.ts";
import type { RequestStats } from "./request-stats.ts";
import { type StickyConfig, type StickyUse, stickyCookieLine } from "./sticky.ts";
import type { StopGate } from "./stop-gate.ts";
import type {
  AccessControl,
  AliasResolver,
  GoneHashes,
  IngressConfig,
  IngressLog,
  Route,
  RouteTable,
} from "./types.ts";
import type { UpstreamPool, UpstreamTarget } from "./upstream-pool.ts";

/** How often the server checks deadlines and advances ctx.now: timeouts are this precise. */
export const SWEEP_MS = 250;

/** What every client connection shares; built once by startIngress. */
export interface ProxyContext {
  readonly config: IngressConfig;
  readonly routes: RouteTable;
  readonly aliases: AliasResolver;
  readonly inflight: InFlight;
  readonly gate: StopGate;
  readonly pool: UpstreamPool;
  readonly log: IngressLog;
  readonly stats: IngressStats;
  /** proves this member's hops to peers and checks theirs; undefined: no hop is trusted */
  readonly hopAuth: HopAuth | undefined;
  /** private previews; undefined: every hash URL is public */
  readonly access?: AccessControl | undefined;
  /** retired hashes (410); undefined: every hash no member serves is a 404 */
  readonly gone?: GoneHashes | undefined;
  /** per-hash request counts for progressive delivery (request-stats.ts); undefined: not counted */
  readonly requestStats?: RequestStats | undefined;
  /** sticky cookies of alias requests (sticky.ts); undefined: none set, none followed */
  readonly sticky?: StickyConfig | undefined;
  /** when clients a cookie pinned may come back, per hash (published in the report) */
  readonly stickyUse?: StickyUse | undefined;
  /** the TLS listener's bound port (config.tls.port, or the one picked for 0), for redirects */
  tlsPort?: number | undefined;
  /** coarse clock (ms), advanced by the server's sweep; deadlines are set from it without a syscall */
  now: number;
  targetFor(route: Exclude<Route, { kind: "none" }>): UpstreamTarget;
  hashLine(hash: string): Buffer;
  /** the Set-Cookie line that pins a client of `alias` to `hash` (sticky.ts stickyCookieLine) */
  cookieLine(alias: string, hash: string, maxAgeSec: number, secure: boolean): Buffer;
}

export class IngressStats {
  connections = 0;
  /** requests with a hop header that no cluster key proved (clients posing as members) */
  unprovenHops = 0;
  /** requests for a hash URL refused for want of access (answered as an unknown hash) */
  accessDenied = 0;
  readonly answered = new Map<number, number>();

  countAnswer(status: number): void {
    this.answered.set(status, (this.answered.get(status) ?? 0) + 1);
  }
}

/** Caches the per-route objects the hot path would otherwise rebuild on every request. */
export function routeCaches(): Pick<ProxyContext, "targetFor" | "hashLine" | "cookieLine"> {
  const targets = new Map<string, UpstreamTarget>();
  const lines = new Map<string, Buffer>();
  const cookies = new Map<string, Buffer>();
  return {
    targetFor(route) {
      const key = route.kind === "local" ? route.socketPath : route.baseUrl;
      let target = targets.get(key);
      if (target === undefined) {
        target = route.kind === "local" ? { key, unix: route.socketPath } : tcpTarget(route.baseUrl);
        if (targets.size > 10_000) targets.clear();
        targets.set(key, target);
      }
      return target;
    },
    hashLine(hash) {
      let line = lines.get(hash);
      if (line === undefined) {
        line = Buffer.from(`x-hashd-hash: ${hash}\r\n`, "latin1");
        if (lines.size > 10_000) lines.clear();
        lines.set(hash, line);
      }
      return line;
    },
    cookieLine(alias, hash, maxAgeSec, secure) {
      const key = `${alias} ${hash} ${maxAgeSec} ${secure}`;
      let line = cookies.get(key);
      if (line === undefined) {
        line = Buffer.from(stickyCookieLine(alias, hash, maxAgeSec, secure), "latin1");
        if (cookies.size > 10_000) cookies.clear();
        cookies.set(key, line);
      }
      return line;
    },
  };
}

function tcpTarget(baseUrl: string): UpstreamTarget {
  const url = new URL(baseUrl);
  if (url.protocol !== "http:") throw new Error(`peer baseUrl must be http://host:port, got ${baseUrl}`);
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  return { key: `tcp:${url.host}`, hostname, port: Number(url.port || 80) };
}
