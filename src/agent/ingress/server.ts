import type { SocketHandler, TCPSocketListener } from "bun";
import { ingressConfig } from "./config.ts";
import type { HopAuth } from "./hop-auth.ts";
import { InFlight } from "./inflight.ts";
import type { IngressStatsView } from "./metrics.ts";
import { ProxyConnection } from "./proxy-connection.ts";
import { IngressStats, type ProxyContext, routeCaches, SWEEP_MS } from "./proxy-context.ts";
import type { RequestStats } from "./request-stats.ts";
import type { StickyConfig, StickyUse } from "./sticky.ts";
import { StopGate } from "./stop-gate.ts";
import { TlsListener } from "./tls.ts";
import {
  type AccessControl,
  type AliasResolver,
  defaultLog,
  type GoneHashes,
  type IngressConfig,
  type IngressLog,
  type RouteTable,
} from "./types.ts";
import { UpstreamPool } from "./upstream-pool.ts";

export interface IngressOptions {
  config?: Partial<IngressConfig>;
  routes: RouteTable;
  aliases?: AliasResolver;
  /** share these with the idle scaler and /metrics */
  inflight?: InFlight;
  gate?: StopGate;
  log?: IngressLog;
  /** the cluster's hop proofs (hop-auth.ts); without it, hop headers from clients are ignored */
  hopAuth?: HopAuth;
  /** private previews (access.ts); without it every hash URL is public */
  access?: AccessControl;
  /** retired hashes, answered 410 (gone.ts); without it, 404 */
  gone?: GoneHashes;
  /**
   * counts requests, errors, upstream failures and latencies per hash and alias (request-stats.ts),
   * for progressive delivery and /metrics; without it nothing is counted
   */
  requestStats?: RequestStats;
  /**
   * sticky cookies on alias requests (sticky.ts): their max age and the aliases without them;
   * without it no cookie is set or followed (weighted aliases are still split by client address)
   */
  sticky?: StickyConfig;
  /** when pinned clients may come back, per hash (the report publishes it) */
  stickyUse?: StickyUse;
}

export interface Ingress {
  readonly config: IngressConfig;
  /** the port actually bound (differs from config.port when that was 0) */
  readonly port: number;
  /** http://<hostname>:<port> */
  readonly url: string;
  /** the TLS listener's port and certificate (tls.ts); undefined without config.tls */
  readonly tls:
    | {
        readonly port: number;
        readonly url: string;
        current(): { fingerprint: string; subject: string; validTo: string };
        reload(): boolean;
      }
    | undefined;
  readonly inflight: InFlight;
  readonly gate: StopGate;
  /** options.requestStats, for /metrics and this member's reports */
  readonly requestStats: RequestStats | undefined;
  stats(): IngressStatsView & { idleUpstreams: number };
  /** Closes pooled connections to a hash's socket; the idle scaler calls it before a stop. */
  dropIdleUpstreams(hash: string): void;
  /** Stops listening, closes idle connections, lets exchanges in flight finish for graceMs, then cuts the rest. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts the ingress on config.hostname:config.port (Bun.listen, HTTP/1.1 parsed by this module). */
export function startIngress(options: IngressOptions): Ingress {
  const config = ingressConfig(options.config);
  const log = options.log ?? defaultLog;
  const inflight = options.inflight ?? new InFlight();
  const gate = options.gate ?? new StopGate();
  const pool = new UpstreamPool({
    idleMs: config.upstreamIdleSec * 1000,
    maxIdlePerTarget: config.maxIdlePerUpstream,
  });
  const stats = new IngressStats();
  const connections = new Set<ProxyConnection>();
  const ctx: ProxyContext = {
    config,
    routes: options.routes,
    aliases: options.aliases ?? { resolveAlias: () => undefined },
    inflight,
    gate,
    pool,
    log,
    stats,
    hopAuth: options.hopAuth,
    access: options.access,
    gone: options.gone,
    requestStats: options.requestStats,
    sticky: options.sticky,
    stickyUse: options.stickyUse,
    now: Date.now(),
    ...routeCaches(),
  };

  const handlers = connectionHandlers(false);
  function connectionHandlers(secure: boolean): SocketHandler<ProxyConnection> {
    return {
      open(socket) {
        const conn = new ProxyConnection(socket, ctx, secure);
        socket.data = conn;
        connections.add(conn);
        stats.connections++;
      },
      data(socket, data) {
        try {
          socket.data.onClientData(data);
        } catch (error) {
          failed(socket.data, error);
        }
      },
      drain(socket) {
        try {
          socket.data.onClientDrain();
        } catch (error) {
          failed(socket.data, error);
        }
      },
      close(socket) {
        const conn = socket.data;
        if (conn === undefined || !connections.delete(conn)) return;
        stats.connections--;
        guard(conn, () => conn.onClientClose());
      },
      error(_socket, error) {
        log("debug", "client socket error", { error: String(error) });
      },
      ...(secure
        ? {
            handshake(socket: { data: ProxyConnection | undefined }, ok: boolean) {
              const conn = socket.data;
              if (conn !== undefined) guard(conn, () => conn.onHandshake(ok));
            },
          }
        : {}),
    };
  }

  function guard(conn: ProxyConnection | undefined, action: () => void): void {
    try {
      action();
    } catch (error) {
      failed(conn, error);
    }
  }

  function failed(conn: ProxyConnection | undefined, error: unknown): void {
    // a bug must cost one connection, never the agent
    if (conn) conn.fail(error);
    else log("error", "ingress connection failed", { error: String(error) });
  }

  const listener: TCPSocketListener<ProxyConnection> = Bun.listen<ProxyConnection>({
    hostname: config.hostname,
    port: config.port,
    socket: handlers,
  });

  // the same connections, deadlines and pool over TLS; a missing or broken pair throws here
  let tls: TlsListener<ProxyConnection> | undefined;
  if (config.tls !== undefined) {
    try {
      tls = new TlsListener(config.tls, config.hostname, connectionHandlers(true), log);
    } catch (error) {
      listener.stop(true);
      throw error;
    }
    ctx.tlsPort = tls.port;
  }

  const sweep = setInterval(() => {
    const now = Date.now();
    ctx.now = now;
    for (const conn of connections) {
      if (conn.deadline !== 0 && conn.deadline <= now) guard(conn, () => conn.onDeadline());
    }
    pool.sweep(now);
    options.requestStats?.tick(now);
  }, SWEEP_MS);
  sweep.unref();

  const port = listener.port;
  const host = config.hostname.includes(":") ? `[${config.hostname}]` : config.hostname;
  const tlsView = tls && {
    port: tls.port,
    url: `https://${tls.hostname.includes(":") ? `[${tls.hostname}]` : tls.hostname}:${tls.port}`,
    current: () => tls.current,
    reload: () => tls.reload(),
  };
  return {
    config,
    port,
    url: `http://${host}:${port}`,
    tls: tlsView,
    inflight,
    gate,
    requestStats: options.requestStats,
    stats: () => ({
      connections: stats.connections,
      answered: stats.answered,
      unprovenHops: stats.unprovenHops,
      accessDenied: stats.accessDenied,
      idleUpstreams: pool.idleCount(),
    }),
    dropIdleUpstreams(hash) {
      const route = ctx.routes.resolveHash(hash);
      if (route.kind === "local") pool.dropIdle(ctx.targetFor(route).key);
    },
    async stop(graceMs = 10_000) {
      listener.stop();
      tls?.stop();
      const until = Date.now() + graceMs;
      for (;;) {
        for (const conn of connections) guard(conn, () => conn.closeIfIdle());
        if (connections.size === 0 || Date.now() >= until) break;
        await Bun.sleep(50);
      }
      clearInterval(sweep);
      listener.stop(true);
      tls?.stop(true);
      for (const conn of connections) conn.onClientClose();
      pool.close();
    },
  };
}
