/**
 * HTTPS benchmark, hashd's TLS listener against nginx, side by side in one run: the same wildcard
 * certificate (a test CA's, made here with openssl: EC P-256 by default, as NixOS's ACME default
 * `ec256`; `--rsa` for RSA 2048), the same upstream (nginx answering 20 bytes on a unix socket,
 * bench/ingress/nginx.ts), one worker each (hashd is one thread; nginx worker_processes 1).
 *
 *   keep-alive   wrk -t1 -c64 over HTTPS: requests/s once the connections are up
 *   handshakes   wrk -t1 -c32 with `Connection: close`: every request is a new TCP connection and
 *                a full TLS handshake (wrk resumes no session), so requests/s = handshakes/s
 *
 *   bun bench/https/run.ts [--seconds 5] [--rounds 5] [--rsa]
 * Targets are interleaved over rounds; each figure is the median of the rounds, with the range, and
 * "proxy CPU µs/req" is the proxy process's own CPU time per request (steadier on 2 shared cores).
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { testPki } from "../../test/support/ingress/tls-certs.ts";
import { type Nginx, proxyConfig, startNginx, upstreamConfig } from "../ingress/nginx.ts";
import { cpuSeconds, type WrkResult, wrk } from "../ingress/wrk.ts";

const HASH = "0123456789abcdfghijklmnpqrsvwxyz";
const ZONE = "bench.test";
const HOST = `${HASH}.${ZONE}`;
const BODY = "hello from upstream\n";

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? Number(argv[index + 1]) : fallback;
};
const seconds = option("seconds", 5);
const rounds = option("rounds", 5);
const keyType = argv.includes("--rsa") ? "rsa" : "ec";

const dir = mkdtempSync(join(tmpdir(), "hashd-bench-https-"));
chmodSync(dir, 0o755);
const socketPath = join(dir, "service.sock");
const children: Subprocess[] = [];
const nginxes: Nginx[] = [];

async function freePort(): Promise<number> {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

async function startHashd(port: number, cert: string, key: string): Promise<Subprocess> {
  const args = ["bun", join(import.meta.dir, "serve.ts"), String(port), socketPath, HASH, cert, key];
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "inherit" });
  children.push(proc);
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  if (!new TextDecoder().decode(value).includes("ready")) throw new Error("hashd did not start");
  return proc;
}

interface Target {
  name: "hashd" | "nginx";
  port: number;
  pid: number;
}

const CLOSE_SCRIPT = join(dir, "close.lua");

const loads = [
  { label: "keep-alive, 64 conns", connections: 64, script: undefined as string | undefined },
  { label: "new handshake per request, 32 conns", connections: 32, script: CLOSE_SCRIPT },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  await Bun.write(CLOSE_SCRIPT, 'wrk.headers["Connection"] = "close"\n');
  const pki = testPki(dir);
  const pair = pki.wildcard("bench", ZONE, keyType);
  const upstream = await startNginx(
    dir,
    "upstream",
    upstreamConfig(dir, socketPath, await freePort(), join(dir, "none")),
  );
  nginxes.push(upstream);
  const [nginxPort, hashdPort] = [await freePort(), await freePort()];
  Bun.spawnSync(["mkdir", "-p", join(dir, "proxy-tmp")]);
  const proxy = await startNginx(dir, "proxy", proxyConfig(dir, socketPath, nginxPort, pair));
  nginxes.push(proxy);
  const hashd = await startHashd(hashdPort, pair.cert, pair.key);
  const targets: Target[] = [
    { name: "hashd", port: hashdPort, pid: hashd.pid },
    { name: "nginx", port: nginxPort, pid: proxy.workerPid },
  ];
  for (const t of targets) {
    const r = Bun.spawn(
      [
        "curl",
        "-sS",
        "--cacert",
        pki.caFile,
        "--resolve",
        `${HOST}:${t.port}:127.0.0.1`,
        `https://${HOST}:${t.port}/`,
      ],
      { stdout: "pipe" },
    );
    const text = await new Response(r.stdout).text();
    if (text !== BODY) throw new Error(`${t.name}: ${text}`);
  }

  console.log(`# hashd HTTPS benchmark  ${new Date().toISOString()}`);
  console.log(
    `cores ${navigator.hardwareConcurrency}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  console.log(
    `wrk -t1, ${seconds} s per cell, ${rounds} round(s), certificate ${keyType === "ec" ? "EC P-256" : "RSA 2048"}, body ${BODY.length} bytes, Host ${HOST}, Bun ${Bun.version}\n`,
  );
  console.log(
    "| load | proxy | req/s (median) | req/s range | p50 | p99 | proxy CPU µs/req | wrk errors | req/s vs nginx |",
  );
  console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const load of loads) {
    const results = new Map<string, { r: WrkResult; cpuUs: number }[]>();
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const before = await cpuSeconds(t.pid);
        const r = await wrk(`https://127.0.0.1:${t.port}/`, load.connections, seconds, HOST, load.script);
        const cpu = (await cpuSeconds(t.pid)) - before;
        const list = results.get(t.name) ?? [];
        list.push({ r, cpuUs: r.requests > 0 ? (cpu * 1e6) / r.requests : Number.NaN });
        results.set(t.name, list);
      }
    }
    const nginxMedian = median((results.get("nginx") ?? []).map((x) => x.r.rps));
    for (const t of targets) {
      const list = results.get(t.name) ?? [];
      const rps = list.map((x) => x.r.rps);
      const m = median(rps);
      const errors = list.reduce((s, x) => s + x.r.errors + x.r.non2xx, 0);
      console.log(
        `| ${load.label} | ${t.name} | ${m.toFixed(0)} | ${Math.min(...rps).toFixed(0)}–${Math.max(...rps).toFixed(0)} | ` +
          `${fmt(median(list.map((x) => x.r.p50us)))} | ${fmt(median(list.map((x) => x.r.p99us)))} | ` +
          `${median(list.map((x) => x.cpuUs)).toFixed(1)} | ${errors} | ${(m / nginxMedian).toFixed(2)}x |`,
      );
    }
  }
  console.log(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}

function fmt(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`;
}

try {
  await main();
} finally {
  for (const c of children) c.kill();
  for (const n of nginxes) await n.stop();
  rmSync(dir, { recursive: true, force: true });
}
