import type { AliasRoute } from "../../model/alias-route.ts";
import type { HashUrlAccess } from "../../model/config.ts";
import type { BypassSecret } from "./bypass-token.ts";
import type { GoneInfo } from "./gone.ts";

/**
 * What the ingress needs from the rest of the agent. Each is a small interface so that the route
 * table can be filled by gossip later, aliases by the alias store, and service control by systemd,
 * while tests pass plain objects.
 */

/** Where requests for one hash go right now. */
export type Route =
  /** live on this host: its systemd socket unit listens at socketPath */
  | { kind: "local"; hash: string; socketPath: string }
  /** live on another member: forward to that member's ingress (baseUrl = "http://host:port") */
  | { kind: "remote"; hash: string; member: string; baseUrl: string }
  /** not live anywhere: 404 */
  | { kind: "none"; hash: string };

export interface RouteTable {
  /**
   * Called on every request: keep it a map lookup. `localFirst`: a request a peer forwarded here
   * (it may not be forwarded again), so a local copy is the answer even while it starts or stops.
   */
  resolveHash(hash: string, localFirst?: boolean): Route;
}

export interface AliasResolver {
  /** An alias's targets (sticky.ts AliasRoute), or undefined when no such alias exists. */
  resolveAlias(name: string): AliasRoute | undefined;
}

/**
 * Private previews (access.ts): who may reach hash URLs. Without it (tests, a cluster of one by
 * default) every hash URL is public.
 */
export interface AccessControl {
  readonly mode: HashUrlAccess;
  /** whether an alias points at the hash now (asked per request in "aliased" mode: a set lookup) */
  aliased(hash: string): boolean;
  /** the bypass token now (the file may change or be withdrawn); undefined: no token opens anything */
  secret(): BypassSecret | undefined;
  /** whether a connection comes from this host (default: access.ts isLocalClient) */
  isLocal?(remoteAddress: string, localAddress: string): boolean;
}

/** Hashes a member retired (410 rather than 404), asked only for hashes no member serves. */
export interface GoneHashes {
  lookup(hash: string): GoneInfo | undefined;
}

export interface ServiceControl {
  /** Stops hashd-<hash>.service; its socket unit keeps listening, so the next connection starts it. */
  stopService(hash: string): Promise<void>;
}

/** Optional structured log sink; the default writes errors to stderr and drops the rest. */
export type IngressLog = (level: "debug" | "info" | "warn" | "error", event: string, fields?: object) => void;

export const defaultLog: IngressLog = (level, event, fields) => {
  if (level === "error" || level === "warn") console.error(`hashd ingress ${level}: ${event}`, fields ?? "");
};

export interface IngressConfig {
  /** address to listen on, e.g. "127.0.0.1", "0.0.0.0" or "::" */
  hostname: string;
  /** 0 picks a free port (tests); the started ingress reports the real one */
  port: number;
  /** hashes are served at <hash>.<zone>; "localhost" works without DNS set-up */
  zone: string;
  /** this member's name, sent in the hop header when forwarding to a peer */
  member: string;
  /** request line + headers, in bytes; larger heads get 431 */
  maxHeaderBytes: number;
  /** a client must send a complete request head within this time (slowloris guard); 408 after */
  headerTimeoutSec: number;
  /**
   * a keep-alive connection with no request is closed after this time; so is a client that takes
   * none of the bytes queued for it for this long (a reader that stopped reading)
   */
  idleTimeoutSec: number;
  /**
   * how long a service may stay silent before its response head (a cold start included; the clock
   * restarts while the request body is still flowing); 504 after. Once the response has started
   * there is no limit: streams and WebSockets may run for as long as both ends want.
   */
  upstreamTimeoutSec: number;
  /**
   * how long a request for a hash that is live here waits for its socket file to appear (an
   * activation in progress, a socket being re-created) before a 502
   */
  socketWaitSec: number;
  /** request bodies larger than this get 413; 0 means no limit (bodies stream, they are not held) */
  maxRequestBodyBytes: number;
  /** pooled keep-alive connections to upstreams are closed after this idle time */
  upstreamIdleSec: number;
  /** most idle pooled connections kept per upstream socket */
  maxIdlePerUpstream: number;
  /** HTTPS on every hash URL (tls.ts); undefined: plain HTTP only */
  tls?: IngressTlsConfig | undefined;
}

/** The ingress's TLS listener: one wildcard certificate for *.<zone> and <zone>. */
export interface IngressTlsConfig {
  /** address to listen on (default: the plain listener's) */
  hostname?: string | undefined;
  /** default 443; 0 picks a free port (tests) */
  port: number;
  /** PEM: the certificate then its chain (ACME's fullchain.pem) */
  certificateFile: string;
  /** PEM private key matching the certificate */
  keyFile: string;
  /** 308 from http:// to https:// for clients not on this host and not proven members */
  redirectHttp: boolean;
  /** how often the two files are checked for a change (seconds); a change reloads them */
  checkSec: number;
}
