/**
 * What the proxy's own code allocates per request, with the sockets taken out: one ProxyConnection
 * fed a 55-byte GET and a 190-byte response (the benchmark's own, from nginx) a million times over
 * sockets that take every write. Garbage is what brings on the collector's pauses (0.7-1 ms each
 * here), and a request that arrives during one waits it out.
 *
 *   bun bench/ingress/alloc.ts [--requests 1000000]
 *
 * JavaScriptCore's log of its collections (BUN_JSC_logGC=1) names the bytes allocated in each
 * cycle; a child process runs the loop under it and this one adds them up. The two Buffers made per
 * request to stand in for the sockets' reads are counted too (about 400 bytes: Bun makes the same
 * two when it reads from real sockets).
 */
import type { Socket } from "bun";
import { ingressConfig } from "../../src/agent/ingress/config.ts";
import { InFlight } from "../../src/agent/ingress/inflight.ts";
import { ProxyConnection } from "../../src/agent/ingress/proxy-connection.ts";
import { IngressStats, type ProxyContext, routeCaches } from "../../src/agent/ingress/proxy-context.ts";
import { StopGate } from "../../src/agent/ingress/stop-gate.ts";
import { UpstreamConn, UpstreamPool } from "../../src/agent/ingress/upstream-pool.ts";
import { bytesAllocatedIn, collectionsIn, gcLogEnv } from "./gc-log.ts";

const HASH = "0123456789abcdfghijklmnpqrsvwxyz";
const argv = process.argv.slice(2);
const index = argv.indexOf("--requests");
const requests = index >= 0 ? Number(argv[index + 1]) : 1_000_000;

if (argv.includes("--child")) runLoop(requests);
else await measure();

function runLoop(n: number): void {
  const socket = {
    write: (data: Uint8Array, offset = 0, length = data.length - offset) => length,
    pause() {},
    resume() {},
    end() {},
    terminate() {},
    remoteAddress: "127.0.0.1",
  } as unknown as Socket<never>;
  const pool = new UpstreamPool({ idleMs: 60_000, maxIdlePerTarget: 10 });
  const ctx: ProxyContext = {
    config: ingressConfig({}),
    routes: { resolveHash: (hash) => ({ kind: "local", hash, socketPath: "/run/bench.sock" }) },
    aliases: { resolveAlias: () => undefined },
    inflight: new InFlight(),
    gate: new StopGate(),
    pool,
    log: () => {},
    stats: new IngressStats(),
    hopAuth: undefined,
    now: Date.now(),
    ...routeCaches(),
  };
  const upstream = new UpstreamConn(
    ctx.targetFor({ kind: "local", hash: HASH, socketPath: "/run/bench.sock" }),
    pool,
  );
  upstream.socket = socket;
  pool.release(upstream, 0);
  const client = new ProxyConnection(socket as Socket<ProxyConnection>, ctx);
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${HASH}.localhost\r\n\r\n`);
  const response = Buffer.from(
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 03:30:00 GMT\r\n" +
      "Content-Type: text/plain\r\nContent-Length: 20\r\nConnection: keep-alive\r\n\r\nhello from upstream\n",
  );
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    client.onClientData(Buffer.from(request));
    client.onUpstreamData(upstream, Buffer.from(response));
  }
  const elapsed = performance.now() - started;
  const answered = ctx.inflight.requests(HASH);
  if (answered !== n || ctx.inflight.total !== 0) throw new Error(`${answered} of ${n} requests completed`);
  console.log(JSON.stringify({ usPerRequest: (elapsed * 1000) / n }));
}

async function measure(): Promise<void> {
  const child = Bun.spawn(["bun", import.meta.path, "--child", "--requests", String(requests)], {
    env: gcLogEnv(),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, log] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  if ((await child.exited) !== 0) throw new Error(`the loop failed:\n${log.slice(-2000)}`);
  const bytes = bytesAllocatedIn(log);
  const collections = collectionsIn(log);
  const { usPerRequest } = JSON.parse(out) as { usPerRequest: number };
  console.log(`${requests} requests through one ProxyConnection (no sockets)`);
  console.log(`allocated per request: ${Math.round(bytes / requests)} bytes (counted over full cycles only)`);
  console.log(
    `collections: ${collections} (${((collections * 100_000) / requests).toFixed(1)} per 100k requests)`,
  );
  console.log(`proxy code time per request: ${usPerRequest.toFixed(2)} µs`);
}
