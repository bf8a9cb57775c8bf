/**
 * Runs an ingress in its own process for tests that measure its memory (internal).
 * argv[2]: JSON {routes: {<hash>: <socket path>}, config?: Partial<IngressConfig>}.
 * Prints {"port": N, "pid": P} on one line once it listens; exits when stdin closes.
 */
import { startIngress } from "../../../src/agent/ingress/server.ts";
import type { IngressConfig } from "../../../src/agent/ingress/types.ts";
import { MapRoutes } from "./servers.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as {
  routes: Record<string, string>;
  config?: Partial<IngressConfig>;
};
const routes = new MapRoutes();
for (const [hash, socketPath] of Object.entries(options.routes)) routes.local(hash, socketPath);
const ingress = startIngress({ config: { port: 0, ...options.config }, routes });
console.log(JSON.stringify({ port: ingress.port, pid: process.pid }));
for await (const _ of Bun.stdin.stream()) {
  // keep running until the parent closes stdin
}
await ingress.stop(0);
process.exit(0);
