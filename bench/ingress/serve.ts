/**
 * A proxy under test, in its own process so that its CPU and memory can be read alone.
 *   bun bench/ingress/serve.ts hashd <port> <socket> <hash> [count]   the hashd ingress; with
 *                                                   "count", request counting on (RequestStats)
 *   bun bench/ingress/serve.ts fetch <port> <socket>          Bun.serve + fetch({unix}): the obvious Bun proxy
 * Prints "ready" once listening; runs until killed.
 */
import { RequestStats, startIngress } from "../../src/agent/ingress/index.ts";

const [kind, portText, socketPath, hash, counting] = process.argv.slice(2);
const port = Number(portText);
if (kind === "hashd") {
  startIngress({
    config: { hostname: "127.0.0.1", port, maxIdlePerUpstream: 1024 },
    routes: {
      resolveHash: (h) =>
        h === hash ? { kind: "local", hash: h, socketPath: socketPath as string } : { kind: "none", hash: h },
    },
    log: () => {},
    requestStats: counting === "count" ? new RequestStats() : undefined,
  });
} else if (kind === "fetch") {
  Bun.serve({
    hostname: "127.0.0.1",
    port,
    idleTimeout: 255,
    fetch(request, server) {
      const url = request.url;
      const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
      const headers = new Headers(request.headers);
      headers.set("x-forwarded-for", server.requestIP(request)?.address ?? "");
      return fetch(`http://localhost${path}`, {
        unix: socketPath,
        method: request.method,
        headers,
        body: request.body,
        redirect: "manual",
        decompress: false,
      } as RequestInit);
    },
  });
} else {
  throw new Error(`unknown proxy kind ${kind}`);
}
console.log("ready");
