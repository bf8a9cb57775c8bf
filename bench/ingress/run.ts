/**
 * Ingress benchmark: one trivial service (nginx returning 20 bytes on a unix socket), reached
 *   direct  wrk -> the service's own TCP listener (wrk speaks only TCP; see below)
 *   hashd   wrk -> hashd ingress -> unix socket, request counting off and on (request-stats.ts), as
 *           two processes side by side in every round, the ratio printed after the table
 *   nginx   wrk -> nginx proxy (keep-alive pool) -> unix socket
 *   fetch   wrk -> Bun.serve + fetch({unix}) -> unix socket (the obvious Bun proxy, for reference)
 * at 1 and 64 connections; then memory with 10,000 idle keep-alive connections and bulk throughput.
 *
 * The direct path uses the same nginx process's TCP listener: a TCP front (socat) would add its
 * own hop and per-connection fork, and the service's TCP and unix listeners run the same code.
 *
 * Then the same at 64 connections paced (each connection waits a random 0 to 2 x pace ms after every
 * response), once per --pace-ms value: offered loads below saturation, the same on every path, for
 * the latency a proxy adds when the cores are not the bottleneck (at saturation, three processes on
 * two cores queue for CPU and p99 measures that). At 2 ms the single-threaded proxies are still
 * busy most of the time (~25k requests/s); at 10 ms (~6k/s) they are mostly idle.
 *
 * The Bun proxies run with JavaScriptCore's collection log on (BUN_JSC_logGC=1, a few lines per
 * collection), and "GCs per 100k" counts their garbage collections per 100,000 requests: each is a
 * pause of about a millisecond here that the requests of that moment wait out.
 *
 *   bun bench/ingress/run.ts [--seconds 5] [--rounds 3] [--pace-ms 2,10] [--idle 10000] [--skip-idle] [--skip-bulk]
 *                            [--targets direct,hashd,hashd+count,nginx,fetch]
 * With 2 shared cores a single 10 s cell can be off by 3x when a neighbour is busy: the targets are
 * interleaved over rounds and each figure is the median, and "proxy CPU µs/req" (the proxy
 * process's own CPU time per request) is printed as the steadier comparison.
 */
import { chmodSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { collectionsIn, gcLogEnv } from "./gc-log.ts";
import { idleConnections } from "./idle.ts";
import { type Nginx, proxyConfig, startNginx, upstreamConfig } from "./nginx.ts";
import { cpuSeconds, pacedScript, rssBytes, type WrkResult, wrk } from "./wrk.ts";

const HASH = "0123456789abcdfghijklmnpqrsvwxyz";
const HOST = `${HASH}.localhost`;
const BODY = "hello from upstream\n";

const argv = process.argv.slice(2);
if (argv.includes("--help") || argv.includes("-h")) {
  console.log(
    "bun bench/ingress/run.ts [--seconds 5] [--rounds 3] [--pace-ms 2,10] [--idle 10000] [--skip-idle] [--skip-bulk]\n" +
      "                         [--targets direct,hashd,hashd+count,nginx,fetch]\n" +
      "hashd: request counting off; hashd+count: on (the ratio of the two is printed after the table).",
  );
  process.exit(0);
}
const option = (name: string, fallback: number) => {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? Number(argv[index + 1]) : fallback;
};
const seconds = option("seconds", 5);
const rounds = option("rounds", 3);
const idleCount = option("idle", 10_000);
const paceIndex = argv.indexOf("--pace-ms");
const paces = (paceIndex >= 0 ? (argv[paceIndex + 1] ?? "") : "2,10").split(",").map(Number);
if (paces.some((pace) => !(pace > 0))) throw new Error("--pace-ms takes milliseconds, e.g. 2,10");
const ALL_TARGETS = ["direct", "hashd", "hashd+count", "nginx", "fetch"] as const;
type TargetName = (typeof ALL_TARGETS)[number];
const targetsIndex = argv.indexOf("--targets");
const chosen = (targetsIndex >= 0 ? (argv[targetsIndex + 1] ?? "") : ALL_TARGETS.join(",")).split(",");
if (chosen.some((name) => !(ALL_TARGETS as readonly string[]).includes(name)))
  throw new Error(`--targets takes some of ${ALL_TARGETS.join(",")}`);
/** the rows of the table, in its order */
const NAMES = ALL_TARGETS.filter((name) => chosen.includes(name));
const LABELS: Record<TargetName, string> = {
  direct: "direct",
  hashd: "hashd, counting off",
  "hashd+count": "hashd, counting on",
  nginx: "nginx",
  fetch: "fetch",
};

const dir = mkdtempSync(join(tmpdir(), "hashd-bench-"));
chmodSync(dir, 0o755); // nginx workers run as an unprivileged user when started by root
const socketPath = join(dir, "service.sock");
const bigFile = join(dir, "big.bin");
const children: Subprocess[] = [];
const nginxes: Nginx[] = [];

async function freePort(): Promise<number> {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

/** the collection log of a Bun proxy (its stderr) */
const gcLog = (name: string) => join(dir, `${name}-gc.log`);

async function startBun(name: "hashd" | "hashd+count" | "fetch", port: number): Promise<Subprocess> {
  const kind = name === "fetch" ? "fetch" : "hashd";
  const args = ["bun", join(import.meta.dir, "serve.ts"), kind, String(port), socketPath, HASH];
  if (name === "hashd+count") args.push("count");
  const proc = Bun.spawn(args, {
    stdout: "pipe",
    stderr: Bun.file(gcLog(name)),
    env: gcLogEnv(),
  });
  children.push(proc);
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  if (!new TextDecoder().decode(value).includes("ready")) throw new Error(`${kind} proxy did not start`);
  return proc;
}

/** Saturating loads (wrk as fast as it can) and paced loads below saturation. */
const loads = [
  { label: "1", connections: 1, paceMs: 0 },
  { label: "64", connections: 64, paceMs: 0 },
  ...paces.map((paceMs) => ({ label: `64 paced ~${paceMs} ms`, connections: 64, paceMs })),
];

async function collections(target: Target): Promise<number> {
  if (target.name === "direct" || target.name === "nginx") return Number.NaN;
  return collectionsIn(await Bun.file(gcLog(target.name)).text());
}

interface Target {
  name: TargetName;
  port: number;
  /** the proxy process whose CPU is measured (none for direct) */
  pid?: number;
}

async function main(): Promise<void> {
  writeFileSync(bigFile, "");
  truncateSync(bigFile, 256 * 1024 * 1024);
  const [directPort, nginxPort, hashdPort, countingPort, fetchPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const upstream = await startNginx(dir, "upstream", upstreamConfig(dir, socketPath, directPort, bigFile));
  nginxes.push(upstream);
  const proxy = await startNginx(dir, "proxy", proxyConfig(dir, socketPath, nginxPort));
  nginxes.push(proxy);
  const all: Target[] = [{ name: "direct", port: directPort }];
  if (NAMES.includes("hashd"))
    all.push({ name: "hashd", port: hashdPort, pid: (await startBun("hashd", hashdPort)).pid });
  if (NAMES.includes("hashd+count"))
    all.push({
      name: "hashd+count",
      port: countingPort,
      pid: (await startBun("hashd+count", countingPort)).pid,
    });
  all.push({ name: "nginx", port: nginxPort, pid: proxy.workerPid });
  if (NAMES.includes("fetch"))
    all.push({ name: "fetch", port: fetchPort, pid: (await startBun("fetch", fetchPort)).pid });
  const targets = all.filter((target) => NAMES.includes(target.name));
  for (const target of targets) {
    const response = await fetch(`http://127.0.0.1:${target.port}/`, { headers: { host: HOST } });
    const text = await response.text();
    if (response.status !== 200 || text !== BODY)
      throw new Error(`${target.name}: ${response.status} ${text}`);
  }

  console.log(`# hashd ingress benchmark  ${new Date().toISOString()}`);
  console.log(
    `cores ${navigator.hardwareConcurrency}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  console.log(
    `wrk -t1, ${seconds} s per cell, ${rounds} round(s), response body ${BODY.length} bytes, Host ${HOST}\n`,
  );

  const results = new Map<string, Row[]>();
  for (const load of loads) {
    let script: string | undefined;
    if (load.paceMs > 0) {
      script = join(dir, `paced-${load.paceMs}.lua`);
      writeFileSync(script, pacedScript(load.paceMs));
    }
    for (let round = 0; round < rounds; round++) {
      // counting off and on run next to each other, in turns first: neither always follows nginx
      const order = round % 2 === 0 ? targets : swapHashd(targets);
      for (const target of order) {
        const url = `http://127.0.0.1:${target.port}/`;
        await wrk(url, load.connections, 1, HOST, script); // warm the pools
        const cpuBefore = target.pid ? await cpuSeconds(target.pid) : 0;
        const gcBefore = await collections(target);
        const result = await wrk(url, load.connections, seconds, HOST, script);
        const cpu = target.pid ? (await cpuSeconds(target.pid)) - cpuBefore : Number.NaN;
        const gcs = ((await collections(target)) - gcBefore) * (100_000 / result.requests);
        const key = `${load.label}/${target.name}`;
        const row = { ...result, cpuUs: (cpu * 1e6) / result.requests, gcs };
        results.set(key, [...(results.get(key) ?? []), row]);
        if (result.errors > 0 || result.non2xx > 0) {
          console.log(`!! ${key}: ${result.errors} socket errors, ${result.non2xx} non-2xx responses`);
        }
      }
    }
  }
  printTable(results);
  printCountingRatio(results);
  console.log(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );

  if (!argv.includes("--skip-idle")) {
    console.log(`\n## memory with ${idleCount} idle keep-alive connections (after one request each)\n`);
    console.log("| proxy | RSS before | RSS with idle conns | per connection |");
    console.log("|---|---:|---:|---:|");
    for (const target of targets.filter(
      (t) => t.name === "hashd" || t.name === "hashd+count" || t.name === "nginx",
    )) {
      const pid = target.pid as number;
      const before = await rssBytes(pid);
      const idle = await idleConnections(target.port, idleCount, HOST);
      await Bun.sleep(500);
      const after = await rssBytes(pid);
      idle.close();
      console.log(
        `| ${LABELS[target.name]} | ${mb(before)} | ${mb(after)} | ${((after - before) / idle.open / 1024).toFixed(1)} KiB` +
          `${idle.open < idleCount ? ` (only ${idle.open} opened)` : ""} |`,
      );
      await Bun.sleep(500);
    }
  }

  if (!argv.includes("--skip-bulk")) {
    console.log("\n## bulk download, 256 MiB through each path (curl, one connection, nginx sendfile off)\n");
    console.log("| path | MB/s |");
    console.log("|---|---:|");
    for (const target of targets) {
      const curl = Bun.spawn(
        [
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{speed_download}",
          "-H",
          `Host: ${HOST}`,
          `http://127.0.0.1:${target.port}/big`,
        ],
        { stdout: "pipe" },
      );
      const speed = Number(await new Response(curl.stdout).text());
      console.log(`| ${LABELS[target.name]} | ${(speed / 1e6).toFixed(0)} |`);
    }
  }
}

type Row = WrkResult & { cpuUs: number; gcs: number };

function printTable(results: Map<string, Row[]>): void {
  const all = (key: string, pick: (r: Row) => number) => (results.get(key) ?? []).map(pick);
  const med = (key: string, pick: (r: Row) => number) => median(all(key, pick));
  console.log(
    "| conns | path | req/s (median) | req/s range | p50 | p90 | p99 | proxy CPU µs/req | GCs per 100k | req/s vs nginx | p50 / p99 added over direct |",
  );
  console.log("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const { label } of loads) {
    const nginxRps = med(`${label}/nginx`, (r) => r.rps);
    const direct50 = med(`${label}/direct`, (r) => r.p50us);
    const direct99 = med(`${label}/direct`, (r) => r.p99us);
    for (const name of NAMES) {
      const key = `${label}/${name}`;
      const rps = all(key, (r) => r.rps);
      const p50 = med(key, (r) => r.p50us);
      const p99 = med(key, (r) => r.p99us);
      const cpu = med(key, (r) => r.cpuUs);
      const gcs = med(key, (r) => r.gcs);
      const vs = name === "direct" || Number.isNaN(nginxRps) ? "" : `${(median(rps) / nginxRps).toFixed(2)}x`;
      const added =
        name === "direct" || Number.isNaN(direct50) ? "" : `${us(p50 - direct50)} / ${us(p99 - direct99)}`;
      console.log(
        `| ${label} | ${LABELS[name]} | ${Math.round(median(rps))} | ${Math.round(Math.min(...rps))}–${Math.round(Math.max(...rps))} | ` +
          `${us(p50)} | ${us(med(key, (r) => r.p90us))} | ${us(p99)} | ${Number.isNaN(cpu) ? "" : cpu.toFixed(1)} | ` +
          `${Number.isNaN(gcs) ? "" : gcs.toFixed(0)} | ${vs} | ${added} |`,
      );
    }
  }
}

/**
 * Counting on against off, per load: the median over rounds of each round's ratio (the two ran a few
 * seconds apart, so a neighbour's burst tends to hit both), and the ratio of the medians.
 */
function printCountingRatio(results: Map<string, Row[]>): void {
  if (!NAMES.includes("hashd") || !NAMES.includes("hashd+count")) return;
  console.log("\n## request counting: hashd with counting on vs off (same run, interleaved)\n");
  console.log(
    "| conns | req/s off | req/s on | on/off (median of rounds) | on/off (of medians) | CPU µs/req off | on | on/off |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const { label } of loads) {
    const off = results.get(`${label}/hashd`) ?? [];
    const on = results.get(`${label}/hashd+count`) ?? [];
    const perRound = off.map((row, i) => (on[i]?.rps ?? Number.NaN) / row.rps);
    const rpsOff = median(off.map((r) => r.rps));
    const rpsOn = median(on.map((r) => r.rps));
    const cpuOff = median(off.map((r) => r.cpuUs));
    const cpuOn = median(on.map((r) => r.cpuUs));
    console.log(
      `| ${label} | ${Math.round(rpsOff)} | ${Math.round(rpsOn)} | ${median(perRound).toFixed(3)} | ` +
        `${(rpsOn / rpsOff).toFixed(3)} | ${cpuOff.toFixed(1)} | ${cpuOn.toFixed(1)} | ${(cpuOn / cpuOff).toFixed(3)} |`,
    );
  }
}

function swapHashd(targets: Target[]): Target[] {
  const swapped = [...targets];
  const a = swapped.findIndex((t) => t.name === "hashd");
  const b = swapped.findIndex((t) => t.name === "hashd+count");
  if (a >= 0 && b >= 0) [swapped[a], swapped[b]] = [swapped[b] as Target, swapped[a] as Target];
  return swapped;
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const us = (value: number) =>
  Math.abs(value) >= 1000 ? `${(value / 1000).toFixed(2)} ms` : `${value.toFixed(0)} µs`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function cleanup(): Promise<void> {
  for (const child of children) child.kill();
  for (const nginx of nginxes) await nginx.stop();
  await Promise.all(children.map((child) => child.exited));
  rmSync(dir, { recursive: true, force: true });
}

try {
  await main();
} finally {
  await cleanup();
}
