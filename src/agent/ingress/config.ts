import { hostname as osHostname } from "node:os";
import { HashdError } from "../../lib/errors.ts";
import { EXPECTED_ZONE, isZone } from "../../model/names.ts";
import type { IngressConfig, IngressTlsConfig } from "./types.ts";

/**
 * Defaults. The header limit matches Bun's and Node's 16 KiB; the pool idle time stays below the
 * shortest keep-alive timeout of common upstream servers (Node's http.Server: 5 s), so the ingress
 * closes an idle connection before the service does and rarely races a close with a new request.
 */
export const INGRESS_DEFAULTS: IngressConfig = {
  hostname: "127.0.0.1",
  port: 8080,
  zone: "localhost",
  member: osHostname(),
  maxHeaderBytes: 16 * 1024,
  headerTimeoutSec: 10,
  idleTimeoutSec: 60,
  upstreamTimeoutSec: 60,
  socketWaitSec: 60,
  maxRequestBodyBytes: 0,
  upstreamIdleSec: 2,
  maxIdlePerUpstream: 256,
};

/** Fills defaults and refuses nonsense with a message naming the field. */
export function ingressConfig(partial: Partial<IngressConfig> = {}): IngressConfig {
  const config = { ...INGRESS_DEFAULTS, ...dropUndefined(partial) };
  config.zone = config.zone.toLowerCase().replace(/\.$/, "");
  if (!isZone(config.zone)) bad("zone", config.zone, EXPECTED_ZONE);
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535)
    bad("port", config.port, "0-65535");
  if (!/^[\w.-]{1,64}$/.test(config.member))
    bad("member", config.member, "1-64 of letters, digits, '.', '_', '-'");
  positiveInt("maxHeaderBytes", config.maxHeaderBytes, 1024, 1024 * 1024);
  positive("headerTimeoutSec", config.headerTimeoutSec);
  positive("idleTimeoutSec", config.idleTimeoutSec);
  positive("upstreamTimeoutSec", config.upstreamTimeoutSec);
  positive("socketWaitSec", config.socketWaitSec);
  positive("upstreamIdleSec", config.upstreamIdleSec);
  positiveInt("maxIdlePerUpstream", config.maxIdlePerUpstream, 0, 100_000);
  positiveInt("maxRequestBodyBytes", config.maxRequestBodyBytes, 0, Number.MAX_SAFE_INTEGER);
  if (config.tls !== undefined) {
    config.tls = tlsConfig(config.tls);
    if (config.tls.port !== 0 && config.tls.port === config.port)
      bad("tls.port", config.tls.port, `a port other than the plain listener's (${config.port})`);
  }
  return config;
}

/** The TLS defaults: port 443, no redirect, the files checked every 10 s. */
export const TLS_DEFAULTS = { port: 443, redirectHttp: false, checkSec: 10 } as const;

function tlsConfig(partial: Partial<IngressTlsConfig>): IngressTlsConfig {
  const tls = { ...TLS_DEFAULTS, ...dropUndefined(partial) } as IngressTlsConfig;
  if (typeof tls.certificateFile !== "string" || !tls.certificateFile.startsWith("/"))
    bad(
      "tls.certificateFile",
      tls.certificateFile,
      "an absolute path (PEM: the certificate, then its chain)",
    );
  if (typeof tls.keyFile !== "string" || !tls.keyFile.startsWith("/"))
    bad("tls.keyFile", tls.keyFile, "an absolute path (PEM private key)");
  if (!Number.isInteger(tls.port) || tls.port < 0 || tls.port > 65535) bad("tls.port", tls.port, "0-65535");
  if (typeof tls.redirectHttp !== "boolean") bad("tls.redirectHttp", tls.redirectHttp, "true or false");
  positive("tls.checkSec", tls.checkSec);
  return tls;
}

function positive(field: string, value: number): void {
  if (typeof value !== "number" || !(value > 0) || value > 86_400)
    bad(field, value, "a number of seconds, 0 < s <= 86400");
}

function positiveInt(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    bad(field, value, `an integer in ${min}..${max}`);
}

function bad(field: string, value: unknown, expected: string): never {
  throw new HashdError("bad_request", `ingress ${field}: ${JSON.stringify(value)} is not ${expected}`);
}

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
