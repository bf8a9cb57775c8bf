/** The Bun adapter: serves statusApp on a TCP address, localhost unless configured otherwise. */
import { type StatusAppOptions, statusApp } from "./app.ts";
import type { StatusSource } from "./types.ts";

export interface StatusServerConfig {
  /** default 127.0.0.1: the page shows the cluster's layout, so it is not public unless asked */
  address?: string;
  /** 0 picks a free port (tests) */
  port: number;
}

export interface StatusServer {
  /** the bound address and port, e.g. http://127.0.0.1:8731/ */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export function startStatusServer(
  config: StatusServerConfig,
  source: StatusSource,
  options: StatusAppOptions = {},
): StatusServer {
  const app = statusApp(source, options);
  const hostname = config.address ?? "127.0.0.1";
  const server = Bun.serve({
    hostname,
    port: config.port,
    fetch: app.fetch,
    // An SSE stream is quiet between heartbeats; Bun's default 10 s idle time-out would cut it.
    idleTimeout: 0,
  });
  const port = server.port as number;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host}:${port}/`,
    port,
    // Closing active connections ends open SSE streams at once instead of waiting for them.
    stop: () => server.stop(true),
  };
}
