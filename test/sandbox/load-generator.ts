import type { Host } from "./harness.ts";

/**
 * A load generator that runs inside a sandbox host (/usr/bin/bun sees the machine's bun through
 * the host's overlay): `concurrency` loops of GET requests (or of another method, with a 1000-byte
 * body: POST is not retried by the ingress, so it shows a request cut) to one URL with one Host
 * header until a stop file appears, then one JSON summary on stdout. Every response body is kept in a tally, so
 * a test can check which versions answered.
 */
export const LOAD_GENERATOR_TS = String.raw`
const [url, host, concurrency, stopFile, path = "/", method = "GET"] = process.argv.slice(2);
const payload = method === "GET" ? undefined : "x".repeat(1000);
const tally: Record<string, number> = {};
const errors: string[] = [];
let ok = 0, failed = 0, firstFailAt = 0, lastFailAt = 0;
const fail = (text: string) => {
  failed++;
  lastFailAt = Date.now();
  if (!firstFailAt) firstFailAt = lastFailAt;
  if (errors.length < 20) errors.push(text);
};
const stopped = async () => await Bun.file(stopFile).exists();
async function loop() {
  while (!(await stopped())) {
    try {
      const r = await fetch(url + path, { method, body: payload, headers: { host } });
      const body = await r.text();
      if (r.status === 200) { ok++; const key = body.trim(); tally[key] = (tally[key] ?? 0) + 1; }
      else fail(r.status + " " + body.slice(0, 200));
    } catch (e) {
      fail(String(e));
    }
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, loop));
const failingMs = failed ? lastFailAt - firstFailAt : 0;
console.log(JSON.stringify({ ok, failed, failingMs, errors, tally }));
`;

export interface LoadSummary {
  ok: number;
  failed: number;
  /** from the first failed request to the last one */
  failingMs: number;
  errors: string[];
  /** response body -> count */
  tally: Record<string, number>;
}

/**
 * The rollout tests' load (test/sandbox/rollout.test.ts, bench/rollout): many clients, each with its
 * own source address (added to the host's eth0: the ingress splits a weighted alias by client
 * address), each sending one request at a time over a new connection, to the ingresses in turn.
 * A cookie client keeps the `hashd-<alias>` cookie an answer sets, for its Max-Age, as a browser
 * does; a cookie-less client never sends one. Argument: a JSON file with a RolloutLoadConfig; stops
 * when the stop file appears, then prints one RolloutLoadSummary as JSON.
 */
export interface RolloutLoadConfig {
  /** "10.231.0.10:8480", ...: client i's request k goes to ingresses[(i + k) % n] */
  ingresses: string[];
  /** Host header, e.g. "prod.test" */
  host: string;
  alias: string;
  clients: { src: string; cookie: boolean }[];
  stopFile: string;
  /** pause between a client's requests, ms */
  pauseMs: number;
}

/** Consecutive answers of one client from one hash (with the cookie epoch they fell in). */
export interface ClientRun {
  hash: string;
  n: number;
  first: number;
  last: number;
  /** the client's cookie epoch (a new cookie after the last one expired or was replaced); 0 = none */
  epoch: number;
  /** ingress indexes that answered in this run */
  ingresses: number[];
}

export interface RolloutLoadSummary {
  ok: number;
  failed: number;
  firstFailAt: number;
  lastFailAt: number;
  /** first failures: time, client source, ingress index, status (0: no answer), x-hashd-hash */
  failures: { at: number; src: string; ingress: number; status: number; hash: string; error?: string }[];
  /** answers (any status) per x-hashd-hash */
  byHash: Record<string, number>;
  /** failures per x-hashd-hash ("" when the answer had none) */
  failedByHash: Record<string, number>;
  /** p50/p99 of the 200 answers per hash, ms */
  latency: Record<string, { p50: number; p99: number; n: number }>;
  /** per client source: its runs of one hash */
  clients: { src: string; cookie: boolean; runs: ClientRun[] }[];
  /** per whole second (ms / 1000): answers per hash, cookie-less clients only, per ingress index */
  seconds: Record<string, Record<string, number[]>>;
  /** per hash: when a cookie-less client was last answered by it, per ingress index (0: never) */
  lastCookieless: Record<string, number[]>;
}

export const ROLLOUT_LOAD_TS = String.raw`
import * as net from "node:net";
const cfg = JSON.parse(await Bun.file(process.argv[2]).text());
const out = { ok: 0, failed: 0, firstFailAt: 0, lastFailAt: 0, failures: [], byHash: {}, failedByHash: {},
  latency: {}, clients: [], seconds: {}, lastCookieless: {} };
const lat = {};
let stop = false;
const stopper = setInterval(async () => { if (await Bun.file(cfg.stopFile).exists()) stop = true; }, 100);

function request(ingress, src, cookie) {
  const [host, port] = ingress.split(":");
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    const finish = (r) => { if (!done) { done = true; sock.destroy(); resolve(r); } };
    const sock = net.connect({ host, port: Number(port), localAddress: src });
    sock.setTimeout(15000, () => finish({ status: 0, error: "timeout" }));
    sock.on("connect", () => {
      sock.write("GET / HTTP/1.1\r\nhost: " + cfg.host + "\r\nconnection: close\r\n" +
        (cookie ? "cookie: " + cookie + "\r\n" : "") + "\r\n");
    });
    sock.on("data", (d) => chunks.push(d));
    sock.on("error", (e) => finish({ status: 0, error: String(e) }));
    sock.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return finish({ status: 0, error: "no answer: " + text.slice(0, 100) });
      const head = text.slice(0, end).split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d+)/.exec(head[0] ?? "")?.[1] ?? 0);
      const headers = {};
      for (const l of head.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      finish({ status, headers, body: text.slice(end + 4) });
    });
  });
}

async function client(i, c) {
  const me = { src: c.src, cookie: c.cookie, runs: [] };
  out.clients.push(me);
  let cookie, cookieUntil = 0, epoch = 0, k = 0;
  while (!stop) {
    const ing = (i + k++) % cfg.ingresses.length;
    const now = Date.now();
    if (cookie && now >= cookieUntil) cookie = undefined;
    const t0 = performance.now();
    const r = await request(cfg.ingresses[ing], c.src, c.cookie ? cookie : undefined);
    const ms = performance.now() - t0;
    const at = Date.now();
    const hash = r.headers?.["x-hashd-hash"] ?? "";
    out.byHash[hash] = (out.byHash[hash] ?? 0) + 1;
    if (r.status === 200) {
      out.ok++;
      (lat[hash] ??= []).push(ms);
    } else {
      out.failed++;
      out.lastFailAt = at;
      if (!out.firstFailAt) out.firstFailAt = at;
      out.failedByHash[hash] = (out.failedByHash[hash] ?? 0) + 1;
      if (out.failures.length < 2000)
        out.failures.push({ at, src: c.src, ingress: ing, status: r.status, hash, ...(r.error ? { error: r.error } : {}) });
    }
    const set = r.headers?.["set-cookie"];
    if (c.cookie && set) {
      const m = new RegExp("^hashd-" + cfg.alias + "=([a-z0-9]+);.*Max-Age=(\\d+)", "i").exec(set);
      if (m) { cookie = "hashd-" + cfg.alias + "=" + m[1]; cookieUntil = at + Number(m[2]) * 1000; epoch++; }
    }
    if (!c.cookie && hash) {
      const s = (out.seconds[Math.floor(at / 1000)] ??= {});
      const row = (s[hash] ??= cfg.ingresses.map(() => 0));
      row[ing]++;
      const last = (out.lastCookieless[hash] ??= cfg.ingresses.map(() => 0));
      last[ing] = Math.max(last[ing], at);
    }
    if (hash) {
      const last = me.runs[me.runs.length - 1];
      const ep = c.cookie ? epoch : 0;
      if (last && last.hash === hash && last.epoch === ep) {
        last.n++; last.last = at;
        if (!last.ingresses.includes(ing)) last.ingresses.push(ing);
      } else me.runs.push({ hash, n: 1, first: at, last: at, epoch: ep, ingresses: [ing] });
    }
    if (cfg.pauseMs) await Bun.sleep(cfg.pauseMs);
  }
}
await Promise.all(cfg.clients.map((c, i) => client(i, c)));
clearInterval(stopper);
for (const [h, list] of Object.entries(lat)) {
  list.sort((a, b) => a - b);
  const q = (p) => list[Math.min(list.length - 1, Math.floor(p * list.length))];
  out.latency[h] = { p50: q(0.5), p99: q(0.99), n: list.length };
}
console.log(JSON.stringify(out));
`;

/** Client source addresses of host number `index` (0-based): 10.231.0.100 + 40 * index + j. */
export function clientAddresses(index: number, count: number): string[] {
  if (count > 40 || index > 3) throw new Error("at most 40 client addresses on each of 4 hosts");
  return Array.from({ length: count }, (_, j) => `10.231.0.${100 + 40 * index + j}`);
}

/** Adds clientAddresses(index, count) to the host's eth0 (idempotent). */
export async function addClientAddresses(host: Host, index: number, count: number): Promise<string[]> {
  const addrs = clientAddresses(index, count);
  const have = await host.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
  for (const a of addrs)
    if (!have.includes(` ${a}/`)) await host.run(["ip", "addr", "add", `${a}/24`, "dev", "eth0"]);
  return addrs;
}

/** ROLLOUT_LOAD_TS running in some hosts; stop() collects every host's summary. */
export interface RolloutLoad {
  startedAt: number;
  stop(): Promise<RolloutLoadSummary[]>;
}

/**
 * Starts ROLLOUT_LOAD_TS in each of `on` (with the client addresses `clients.get(host)`), to the
 * ingresses of `ingresses` (port 8480).
 */
export async function startRolloutLoad(opts: {
  on: { host: Host; clients: { src: string; cookie: boolean }[] }[];
  ingresses: Host[];
  alias: string;
  zone?: string;
  pauseMs?: number;
}): Promise<RolloutLoad> {
  const tag = Math.random().toString(36).slice(2, 8);
  const procs = await Promise.all(
    opts.on.map(async ({ host, clients }) => {
      const cfg: RolloutLoadConfig = {
        ingresses: opts.ingresses.map((h) => `${h.ip}:8480`),
        host: `${opts.alias}.${opts.zone ?? "test"}`,
        alias: opts.alias,
        clients,
        stopFile: `/root/rollout-load-${tag}.stop`,
        pauseMs: opts.pauseMs ?? 20,
      };
      await host.writeFile("/root/rollout-load.ts", ROLLOUT_LOAD_TS);
      await host.writeFile(`/root/rollout-load-${tag}.json`, JSON.stringify(cfg));
      const proc = host.spawn(["/usr/bin/bun", "/root/rollout-load.ts", `/root/rollout-load-${tag}.json`], {
        stdout: "pipe",
        stderr: "pipe",
      });
      return { host, proc, stopFile: cfg.stopFile };
    }),
  );
  return {
    startedAt: Date.now(),
    async stop() {
      await Promise.all(procs.map(({ host, stopFile }) => host.writeFile(stopFile, "")));
      return Promise.all(
        procs.map(async ({ host, proc }) => {
          const [text, err] = await Promise.all([
            new Response(proc.stdout as ReadableStream).text(),
            new Response(proc.stderr as ReadableStream).text(),
          ]);
          try {
            return JSON.parse(text) as RolloutLoadSummary;
          } catch {
            throw new Error(
              `load generator on ${host.name} printed no summary: ${text.slice(0, 500)} ${err}`,
            );
          }
        }),
      );
    },
  };
}

/** The summaries of several hosts' load generators as one (latencies: the largest p50/p99 seen). */
export function mergeSummaries(list: RolloutLoadSummary[]): RolloutLoadSummary {
  const out: RolloutLoadSummary = {
    ok: 0,
    failed: 0,
    firstFailAt: 0,
    lastFailAt: 0,
    failures: [],
    byHash: {},
    failedByHash: {},
    latency: {},
    clients: [],
    seconds: {},
    lastCookieless: {},
  };
  const add = (to: Record<string, number>, from: Record<string, number>) => {
    for (const [k, v] of Object.entries(from)) to[k] = (to[k] ?? 0) + v;
  };
  for (const s of list) {
    out.ok += s.ok;
    out.failed += s.failed;
    if (s.firstFailAt && (!out.firstFailAt || s.firstFailAt < out.firstFailAt))
      out.firstFailAt = s.firstFailAt;
    out.lastFailAt = Math.max(out.lastFailAt, s.lastFailAt);
    out.failures.push(...s.failures);
    add(out.byHash, s.byHash);
    add(out.failedByHash, s.failedByHash);
    for (const [h, l] of Object.entries(s.latency)) {
      const have = out.latency[h];
      out.latency[h] = have
        ? { p50: Math.max(have.p50, l.p50), p99: Math.max(have.p99, l.p99), n: have.n + l.n }
        : { ...l };
    }
    out.clients.push(...s.clients);
    for (const [h, row] of Object.entries(s.lastCookieless)) {
      const have = out.lastCookieless[h] ?? row.map(() => 0);
      out.lastCookieless[h] = have;
      row.forEach((t, i) => {
        have[i] = Math.max(have[i] ?? 0, t);
      });
    }
    for (const [sec, row] of Object.entries(s.seconds)) {
      const to = out.seconds[sec] ?? {};
      out.seconds[sec] = to;
      for (const [h, perIngress] of Object.entries(row)) {
        const have = to[h] ?? perIngress.map(() => 0);
        to[h] = have;
        perIngress.forEach((n, i) => {
          have[i] = (have[i] ?? 0) + n;
        });
      }
    }
  }
  out.failures.sort((a, b) => a.at - b.at);
  return out;
}
