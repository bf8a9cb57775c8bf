/**
 * Progressive delivery on three sandbox hosts (a, b, c) in one gossip cluster: staged rollouts of
 * an alias judged by the ingresses' request counts, aborts on errors and on latency, a driver that
 * dies or is cut off mid-rollout, sticky cookies and the client-address split, a sticky client
 * keeping an old hash (and the old hash kept for it), and guarded switches. Load runs through every
 * host's ingress from many client addresses (the split is by client address), half of the clients
 * keeping the `hashd-<alias>` cookie. Short timings: steps of 3 s, judged every 1 s, 50 requests.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { HistoryEntry } from "../../src/agent/aliases/alias-service.ts";
import type { RolloutView } from "../../src/agent/control/rollout-api.ts";
import { bucketOf } from "../../src/agent/ingress/sticky.ts";
import { hashd, hashdJson, installCluster, waitFor } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import {
  addClientAddresses,
  mergeSummaries,
  type RolloutLoad,
  type RolloutLoadSummary,
  startRolloutLoad,
} from "./load-generator.ts";
import { serviceExpr, type TestService } from "./service-closures.ts";

// The whole file takes a few minutes here: room for a machine several times slower.
setDefaultTimeout(600_000);

const STICKY_MAX_AGE_SEC = 20;
const CLIENTS_PER_HOST = 40;
/** Rollout flags of the tests: short steps, judged every second, 50 requests for a verdict. */
const FAST = ["--step-time", "3s", "--interval", "1s", "--min-requests", "50"];

let sb: Sandbox;
let hosts: Host[];
let a: Host;
let b: Host;
let c: Host;
/** client addresses per host (the first half keep the cookie) */
const addrs = new Map<Host, string[]>();
const paths: Record<string, string> = {};
const hashOf = (p: string) => p.slice(11, 43);
const h = (name: string) => hashOf(paths[name] as string);
const short = (hash: string) => hash.slice(0, 8);

/** Every version of the test service: the baseline answers in 20 ms; slow is 5x that. */
const VERSIONS: Record<string, TestService> = {
  v1: { name: "web", version: "1", environment: { TEST_SLEEP_MS: "20" } },
  good1: { name: "web", version: "2-good-1", environment: { TEST_SLEEP_MS: "20" } },
  good4a: { name: "web", version: "2-good-4a", environment: { TEST_SLEEP_MS: "20" } },
  good4b: { name: "web", version: "2-good-4b", environment: { TEST_SLEEP_MS: "20" } },
  good5: { name: "web", version: "2-good-5", environment: { TEST_SLEEP_MS: "20" } },
  good7: { name: "web", version: "2-good-7", environment: { TEST_SLEEP_MS: "20" } },
  bad2: { name: "web", version: "2-bad-2", environment: { TEST_SLEEP_MS: "20", TEST_FAIL_PERCENT: "30" } },
  bad7: { name: "web", version: "2-bad-7", environment: { TEST_SLEEP_MS: "20", TEST_FAIL_PERCENT: "30" } },
  slow3: { name: "web", version: "2-slow-3", environment: { TEST_SLEEP_MS: "100" } },
  s1: { name: "sticky", version: "1", environment: { TEST_SLEEP_MS: "20" } },
  s2: { name: "sticky", version: "2", environment: { TEST_SLEEP_MS: "20" } },
};

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a", "b", "c"] });
  hosts = sb.hosts();
  [a, b, c] = hosts as [Host, Host, Host];
  // quick retirement (as retirement.test.ts), short sticky cookies (test 6)
  await installCluster(hosts, { config: { quietSec: 2, sticky: { maxAgeSec: STICKY_MAX_AGE_SEC } } });
  await Promise.all(
    hosts.map(async (host, i) => {
      addrs.set(host, await addClientAddresses(host, i, CLIENTS_PER_HOST));
      // every host builds the same closures (same inputs, same store paths)
      for (const [key, s] of Object.entries(VERSIONS)) paths[key] = await host.nixBuild(serviceExpr(s));
    }),
  );
  await waitFor(
    "every member sees three alive",
    async () => {
      const views = await Promise.all(
        hosts.map((x) => hashdJson<{ members: { state: string }[] }>(x, ["members"])),
      );
      return views.every((v) => v.members.filter((m) => m.state === "alive").length === 3);
    },
    60_000,
  );
  console.log(
    Object.entries(paths)
      .map(([k, p]) => `${k} ${short(hashOf(p))}`)
      .join(", "),
  );
}, 600_000);

afterAll(async () => {
  await sb?.destroy();
});

// ---- helpers -------------------------------------------------------------------------------------

async function activate(names: string[], on: Host[] = hosts): Promise<void> {
  await Promise.all(
    on.map(async (x) => {
      for (const n of names) await hashdJson(x, ["activate", paths[n] as string, "--wait"]);
    }),
  );
}

async function run(x: Host, args: string[]): Promise<string> {
  const r = await hashd(x, args);
  if (r.code !== 0)
    throw new Error(`${x.name}: hashd ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** One GET of `alias` through `ingress`'s ingress from client address `src` on `from`. */
async function probe(from: Host, src: string, ingress: Host, alias = "prod", cookie?: string) {
  const r = await from.exec(
    [
      "curl",
      "-sS",
      "-i",
      "--max-time",
      "20",
      "--interface",
      src,
      "-H",
      `Host: ${alias}.test`,
      ...(cookie ? ["-H", `cookie: ${cookie}`] : []),
      `http://${ingress.ip}:8480/`,
    ],
    { timeoutMs: 30_000 },
  );
  const head = r.stdout.slice(0, r.stdout.indexOf("\r\n\r\n")).toLowerCase();
  return {
    status: Number(/^http\/1\.1 (\d+)/.exec(head)?.[1] ?? 0),
    hash: /\nx-hashd-hash: ([a-z0-9]+)/.exec(head)?.[1] ?? "",
    setCookie: /\nset-cookie: ([^\r\n]+)/.exec(head)?.[1] ?? "",
  };
}

/** Waits until cookie-less requests from a few addresses through every ingress all land on `hash`. */
async function waitAllOn(alias: string, hash: string, timeoutMs = 60_000): Promise<number> {
  const start = Date.now();
  const srcs = (addrs.get(a) as string[]).slice(CLIENTS_PER_HOST / 2, CLIENTS_PER_HOST / 2 + 8);
  await waitFor(
    `${alias} on ${short(hash)} at every ingress`,
    async () => {
      const answers = await Promise.all(hosts.flatMap((ing) => srcs.map((s) => probe(a, s, ing, alias))));
      return answers.every((x) => x.status === 200 && x.hash === hash);
    },
    timeoutMs,
  );
  return Date.now() - start;
}

/** prod = 100% `name` (activated everywhere), seen so at every ingress. */
async function baseline(name = "v1", alias = "prod"): Promise<void> {
  await activate([name]);
  await run(a, ["alias", "set", `${alias}=${h(name)}`]);
  await waitAllOn(alias, h(name));
}

async function status(x: Host, alias = "prod"): Promise<RolloutView> {
  return hashdJson<RolloutView>(x, ["rollout", "status", alias]);
}

async function waitStatus(x: Host, want: string, timeoutMs = 180_000, alias = "prod"): Promise<RolloutView> {
  return waitFor(
    `rollout of ${alias} ${want} on ${x.name}`,
    async () => {
      const v = await status(x, alias);
      return v.rollout.status === want ? v : undefined;
    },
    timeoutMs,
  );
}

/** The alias's writes since `since` as host x saw them, oldest first. */
async function history(x: Host, since: number, alias = "prod"): Promise<HistoryEntry[]> {
  const r = await hashdJson<{ history: HistoryEntry[] }>(x, ["alias", "history", alias]);
  return r.history.filter((e) => e.at >= since).sort((p, q) => p.at - q.at);
}

const describeHistory = (hs: HistoryEntry[]) =>
  hs
    .map(
      (e) =>
        `  ${new Date(e.at).toISOString().slice(11, 23)} by ${e.by}: ${
          e.split ? e.split.map((t) => `${short(t.hash)}:${t.weight}`).join(",") : short(e.hash ?? "null")
        } ${e.rollout ? `[${e.rollout.status} step ${e.rollout.step}] ${e.rollout.note}` : ""}`,
    )
    .join("\n");

/** The rollout writes of a history: (status, step) in order. */
const rolloutSteps = (hs: HistoryEntry[]) =>
  hs.filter((e) => e.rollout !== undefined).map((e) => `${e.rollout?.status}:${e.rollout?.step}`);

/** Load from every host to every ingress: per host, the first half of its clients keep the cookie. */
function everyone(
  on: Host[] = hosts,
  ingresses: Host[] = hosts,
  alias = "prod",
  cookies: "half" | "all" = "half",
) {
  return startRolloutLoad({
    on: on.map((host) => ({
      host,
      clients: (addrs.get(host) as string[]).map((src, j) => ({
        src,
        cookie: cookies === "all" || j < CLIENTS_PER_HOST / 2,
      })),
    })),
    ingresses,
    alias,
    pauseMs: 50,
  });
}

async function deploymentState(x: Host, hash: string): Promise<string> {
  const r = await hashd(x, ["show", hash, "--json"]);
  if (r.code !== 0) return `gone (${r.stderr.trim().slice(0, 80)})`;
  return (JSON.parse(r.stdout) as { deployment: { state: string } }).deployment.state;
}

function summaryLine(s: RolloutLoadSummary): string {
  const by = Object.entries(s.byHash)
    .map(([k, n]) => `${short(k) || "none"} ${n}`)
    .join(", ");
  const lat = Object.entries(s.latency)
    .map(([k, l]) => `${short(k)} p50 ${l.p50.toFixed(0)} ms p99 ${l.p99.toFixed(0)} ms`)
    .join("; ");
  return `${s.ok} ok, ${s.failed} failed; answers: ${by}; ${lat}`;
}

/** Cookie clients whose answers within one cookie changed hash (must be none), and cookies per client. */
function cookieViolations(s: RolloutLoadSummary): { bad: string[]; maxEpochs: number } {
  const bad: string[] = [];
  let maxEpochs = 0;
  for (const cl of s.clients.filter((x) => x.cookie)) {
    const byEpoch = new Map<number, Set<string>>();
    for (const r of cl.runs) byEpoch.set(r.epoch, (byEpoch.get(r.epoch) ?? new Set()).add(r.hash));
    maxEpochs = Math.max(maxEpochs, byEpoch.size);
    for (const [ep, set] of byEpoch)
      if (set.size > 1) bad.push(`${cl.src} cookie ${ep}: ${[...set].map(short).join(" then ")}`);
  }
  return { bad, maxEpochs };
}

/** The share of the clients whose bucket for `alias` falls in the canary's last `percent` buckets. */
function canaryClientShare(percent: number, cookie?: boolean, alias = "prod"): number {
  const all = hosts.flatMap((x) =>
    (addrs.get(x) as string[]).filter((_, j) => cookie === undefined || cookie === j < CLIENTS_PER_HOST / 2),
  );
  return all.filter((s) => bucketOf(alias, s) >= 100 - percent).length / all.length;
}

/**
 * prod in a rollout to `canary` (started on `startOn`, driven by a, the lowest name), with load
 * through b's and c's ingresses only, and at its second step: the driver is then taken out.
 */
async function rolloutAtStep2(canary: string, startOn: Host): Promise<{ load: RolloutLoad; since: number }> {
  await baseline();
  await activate([canary]);
  const load = await everyone([b, c], [b, c]);
  await Bun.sleep(1500);
  const since = Date.now();
  await run(startOn, [
    "rollout",
    "start",
    "prod",
    h(canary),
    "--steps",
    "5,25,50,100",
    ...FAST,
    "--max-p99-ratio",
    "3",
  ]);
  await waitFor(
    "a judges the rollout (it drives)",
    async () => (await status(a)).judgement !== undefined,
    60_000,
  );
  await waitFor("rollout at step 2", async () => (await status(b)).rollout.step >= 1, 120_000).catch(
    async (e) => {
      console.log(
        `stuck: a sees ${JSON.stringify(await status(a))}\nb sees ${JSON.stringify(await status(b))}`,
      );
      const view = await hashdJson<{ members: { name: string; hashes: { hash: string }[] }[] }>(a, [
        "members",
      ]);
      for (const m of view.members)
        console.log(`${m.name}: ${JSON.stringify(m.hashes.filter((x) => x.hash === h(canary)))}`);
      for (const x of [b, c]) {
        const r = await x.run([
          "sh",
          "-c",
          "curl -s --unix-socket /run/hashd/control.sock http://x/metrics | grep -E 'upstream_requests_total' | head -20",
        ]);
        console.log(`${x.name} metrics:\n${r}`);
      }
      throw e;
    },
  );
  return { load, since };
}

/** The majority side finished the rollout after a went out (`what`, at `outAt`): every step once, none written by a since, no request failed. */
async function expectFinishedWithoutA(
  load: RolloutLoad,
  since: number,
  outAt: number,
  done: RolloutView,
  what: string,
): Promise<void> {
  const after = Date.now() - outAt;
  const s = mergeSummaries(await load.stop());
  const hs = await history(b, since);
  console.log(
    `finished ${after} ms after ${what}: ${done.rollout.note}\n${describeHistory(hs)}\n${summaryLine(s)}`,
  );
  expect(rolloutSteps(hs)).toEqual(["running:0", "running:1", "running:2", "running:3", "done:3"]);
  expect(hs.filter((e) => e.at > outAt && e.rollout).every((e) => e.by !== "a")).toBe(true);
  expect(s.failed).toBe(0);
}

// ---- the tests -----------------------------------------------------------------------------------

describe("progressive delivery on three hosts", () => {
  test("1. a good version goes 5 → 25 → 50 → 100 under load and no request fails", async () => {
    console.log(
      `clients in the canary's buckets at 5%: ${(canaryClientShare(5) * 100).toFixed(1)}% ` +
        `(cookie-less ${(canaryClientShare(5, false) * 100).toFixed(1)}%)`,
    );
    expect(canaryClientShare(5)).toBeGreaterThan(0);
    await baseline();
    await activate(["good1"]);
    const load = await everyone();
    await Bun.sleep(1500);
    const since = Date.now();
    await run(b, [
      "rollout",
      "start",
      "prod",
      h("good1"),
      "--steps",
      "5,25,50,100",
      ...FAST,
      "--max-p99-ratio",
      "3",
    ]);
    const done = await waitStatus(c, "done");
    const tookMs = Date.now() - since;
    await waitAllOn("prod", h("good1"));
    await Bun.sleep(1000);
    const s = mergeSummaries(await load.stop());
    const hs = await history(a, since);
    console.log(
      `good rollout done in ${tookMs} ms: ${done.rollout.note}\n${describeHistory(hs)}\n${summaryLine(s)}`,
    );
    expect(rolloutSteps(hs)).toEqual(["running:0", "running:1", "running:2", "running:3", "done:3"]);
    expect(
      hs.filter((e) => e.rollout).map((e) => e.split?.find((t) => t.hash === h("good1"))?.weight ?? 100),
    ).toEqual([5, 25, 50, 100, 100]);
    if (s.failed) console.log(s.failures.slice(0, 10));
    expect(s.failed).toBe(0);
    expect(s.byHash[h("good1")] ?? 0).toBeGreaterThan(0);
    // the same history on every member
    for (const x of [b, c]) expect(rolloutSteps(await history(x, since))).toEqual(rolloutSteps(hs));
  });

  test("2. a version failing 30% of its requests is aborted at the first step; it then drains and retires", async () => {
    await baseline();
    await activate(["bad2"]);
    const load = await everyone();
    await Bun.sleep(1500);
    const since = Date.now();
    await run(a, ["rollout", "start", "prod", h("bad2"), ...FAST]);
    const aborted = await waitStatus(b, "aborted", 120_000);
    const abortSeenMs = await waitAllOn("prod", h("v1"));
    const backAt = Date.now();
    await Bun.sleep(2000);
    const s = mergeSummaries(await load.stop());
    const hs = await history(a, since);
    console.log(`${aborted.rollout.note}\n${describeHistory(hs)}\n${summaryLine(s)}`);
    expect(rolloutSteps(hs)).toEqual(["running:0", "aborted:0"]);
    expect(aborted.rollout.note).toMatch(/^aborted at step 1 \(5%\): error rate/);
    // the abort write: 100% back to v1 in one write
    const last = hs[hs.length - 1] as HistoryEntry;
    expect(last.hash).toBe(h("v1"));
    expect(last.split).toBeUndefined();

    // the bound: at most the canary's share of the requests made until every ingress was back on v1
    const requestsUntilBack = Object.entries(s.seconds)
      .filter(([sec]) => Number(sec) * 1000 <= backAt)
      .reduce(
        (n, [, row]) =>
          n +
          Object.values(row)
            .flat()
            .reduce((p, q) => p + q, 0),
        0,
      );
    const share = Math.max(0.05, canaryClientShare(5));
    const allRequests = s.ok + s.failed;
    const failedBeforeBack = s.failures.filter((f) => f.at <= backAt).length;
    const failedAfter = s.failed - failedBeforeBack;
    const bound = Math.ceil(share * allRequests);
    console.log(
      `30% canary: ${s.failed} failed requests (${failedBeforeBack} until every ingress was back on v1, ` +
        `${failedAfter} after: cookie clients pinned to the canary); bound = share ${(share * 100).toFixed(1)}% × ` +
        `${allRequests} requests = ${bound} (cookie-less requests until back: ${requestsUntilBack}); ` +
        `canary answered ${s.byHash[h("bad2")] ?? 0}, failed ${s.failedByHash[h("bad2")] ?? 0}; ` +
        `abort seen at every ingress ${abortSeenMs} ms after the aborted status`,
    );
    expect(s.failed).toBeGreaterThan(0);
    expect(s.failed).toBeLessThanOrEqual(bound);
    expect(Object.keys(s.failedByHash)).toEqual([h("bad2")]);
    // prod back on v1 at every ingress, for every client address (cookie-less)
    for (const ing of hosts) {
      const answers = await Promise.all((addrs.get(b) as string[]).map((src) => probe(b, src, ing)));
      expect(answers.every((x) => x.status === 200 && x.hash === h("v1"))).toBe(true);
    }
    // the canary drains and retires everywhere (after any sticky client's cookie ran out)
    const retireStart = Date.now();
    for (const x of hosts)
      await waitFor(
        `bad2 retired on ${x.name}`,
        async () => (await deploymentState(x, h("bad2"))) === "retired",
        240_000,
      );
    console.log(`aborted canary retired on every host ${Date.now() - retireStart} ms after the load stopped`);
  });

  test("3. a version whose p99 is 5x the baseline's is aborted on latency", async () => {
    await baseline();
    await activate(["slow3"]);
    const load = await everyone();
    await Bun.sleep(1500);
    const since = Date.now();
    await run(a, ["rollout", "start", "prod", h("slow3"), ...FAST, "--max-p99-ratio", "1.5"]);
    const aborted = await waitStatus(a, "aborted", 180_000);
    await waitAllOn("prod", h("v1"));
    const s = mergeSummaries(await load.stop());
    const hs = await history(a, since);
    console.log(`${aborted.rollout.note}\n${describeHistory(hs)}\n${summaryLine(s)}`);
    expect(aborted.rollout.note).toMatch(/^aborted at step \d \(\d+%\): p99 /);
    expect(rolloutSteps(hs).at(-1)).toMatch(/^aborted:/);
    expect(s.failed).toBe(0);
  });

  test("5. with the cookie no client sees two versions; without it a client address keeps its hash at every ingress", async () => {
    await baseline();
    await activate(["good5"]);
    const load = await everyone();
    await Bun.sleep(1500);
    const since = Date.now();
    // longer steps than FAST: the pause must land within step 3
    const flags = ["--step-time", "10s", "--interval", "1s", "--min-requests", "50", "--max-p99-ratio", "3"];
    await run(c, ["rollout", "start", "prod", h("good5"), "--steps", "5,25,50,100", ...flags]);
    // hold the rollout at 50% and look at every client address through every ingress
    await waitFor("rollout at 50%", async () => (await status(a)).rollout.step >= 2, 120_000);
    await run(a, ["rollout", "pause", "prod"]);
    const paused = await waitStatus(b, "paused", 30_000);
    expect(paused.rollout.step).toBe(2);
    await Bun.sleep(1000);
    const seen = { v1: 0, v2: 0 };
    for (const from of hosts) {
      const srcs = (addrs.get(from) as string[]).slice(CLIENTS_PER_HOST / 2);
      const per = await Promise.all(
        srcs.map(async (src) => {
          const answers = await Promise.all(hosts.map((ing) => probe(from, src, ing)));
          return { src, hashes: answers.map((x) => x.hash), cookie: answers[0]?.setCookie ?? "" };
        }),
      );
      for (const p of per) {
        const want = bucketOf("prod", p.src) < 50 ? h("v1") : h("good5");
        if (new Set(p.hashes).size !== 1 || p.hashes[0] !== want)
          console.log(`${p.src} (bucket ${bucketOf("prod", p.src)}): ${p.hashes.map(short).join(" ")}`);
        expect(p.hashes).toEqual([want, want, want]);
        expect(p.cookie).toBe(
          // probe() lowercases the head
          `hashd-prod=${want}; Max-Age=${STICKY_MAX_AGE_SEC}; Path=/; HttpOnly; SameSite=Lax`.toLowerCase(),
        );
        if (want === h("v1")) seen.v1++;
        else seen.v2++;
      }
    }
    console.log(
      `50/50 split by client address: ${seen.v1} addresses on v1, ${seen.v2} on v2 (same at all 3 ingresses)`,
    );
    expect(seen.v1).toBeGreaterThan(0);
    expect(seen.v2).toBeGreaterThan(0);
    // a cookie names its hash whatever the address's bucket
    const pinned = await probe(
      a,
      (addrs.get(a) as string[])[0] as string,
      c,
      "prod",
      `hashd-prod=${h("v1")}`,
    );
    expect(pinned.hash).toBe(h("v1"));
    expect(pinned.setCookie).toBe("");
    await run(b, ["rollout", "resume", "prod"]);
    await waitStatus(c, "done");
    await Bun.sleep(1000);
    const s = mergeSummaries(await load.stop());
    const hs = await history(a, since);
    console.log(`${describeHistory(hs)}\n${summaryLine(s)}`);
    expect(rolloutSteps(hs)).toEqual([
      "running:0",
      "running:1",
      "running:2",
      "paused:2",
      "running:2",
      "running:3",
      "done:3",
    ]);
    const { bad, maxEpochs } = cookieViolations(s);
    const duration = (Date.now() - load.startedAt) / 1000;
    console.log(
      `cookie clients: ${bad.length} saw two versions under one cookie; at most ${maxEpochs} cookies per client in ${duration.toFixed(0)} s`,
    );
    expect(bad).toEqual([]);
    expect(maxEpochs).toBeLessThanOrEqual(Math.ceil(duration / STICKY_MAX_AGE_SEC) + 1);
    // cookie-less clients only ever moved towards the canary (raising a weight moves buckets one way)
    let flips = 0;
    for (const cl of s.clients.filter((x) => !x.cookie))
      for (let i = 1; i < cl.runs.length; i++)
        if (cl.runs[i]?.hash === h("v1") && cl.runs[i - 1]?.hash === h("good5")) flips++;
    console.log(
      `cookie-less clients moved back from v2 to v1 ${flips} times (ingresses seeing a step at different moments)`,
    );
    expect(s.failed).toBe(0);
  });

  test("7. --guard switches back from a bad version and keeps a good one", async () => {
    await baseline();
    await activate(["bad7", "good7"]);
    const load = await everyone();
    await Bun.sleep(1500);
    const since = Date.now();
    const guardFlags = ["--guard", "10s", "--interval", "1s", "--min-requests", "50"];
    await run(a, ["alias", "set", `prod=${h("bad7")}`, ...guardFlags]);
    const reverted = await waitStatus(b, "aborted", 120_000);
    await waitAllOn("prod", h("v1"));
    console.log(`bad guard: ${reverted.rollout.note}`);
    expect(reverted.rollout.kind).toBe("guard");
    expect(reverted.rollout.note).toMatch(/^guard aborted, back to /);
    await Bun.sleep(1000);
    const since2 = Date.now();
    // a p99 limit of 3x, as tests 1, 4 and 5 use for a good version: it is judged against v1's
    // lifetime counts (no traffic is left on v1 to compare with), and on two shared cores load
    // alone moved p99 past 1.5x once, which aborted a good guard
    await run(b, [
      "alias",
      "set",
      `prod=${h("good7")}`,
      ...guardFlags.slice(0, 1),
      "5s",
      ...guardFlags.slice(2),
      "--max-p99-ratio",
      "3",
    ]);
    const kept = await waitStatus(c, "done", 120_000);
    console.log(`good guard: ${kept.rollout.note}`);
    await waitAllOn("prod", h("good7"));
    await Bun.sleep(1000);
    const s = mergeSummaries(await load.stop());
    const hs = await history(a, since);
    console.log(`${describeHistory(hs)}\n${summaryLine(s)}`);
    expect(rolloutSteps(hs)).toEqual(["running:0", "aborted:0", "running:0", "done:0"]);
    expect(hs.filter((e) => e.at >= since2).at(-1)?.hash).toBe(h("good7"));
    expect(Object.keys(s.failedByHash)).toEqual(s.failed ? [h("bad7")] : []);
  });

  test("6. a sticky client keeps the old hash after a switch until its cookie's max age, and the old hash is kept for it", async () => {
    await activate(["s1", "s2"]);
    await run(a, ["alias", "set", `sticky=${h("s1")}`]);
    await waitAllOn("sticky", h("s1"));
    const load = await everyone(hosts, hosts, "sticky", "all");
    await Bun.sleep(3000); // every client has its cookie for s1
    const switchedAt = Date.now();
    await run(b, ["alias", "set", `sticky=${h("s2")}`]);
    await waitAllOn("sticky", h("s2"));
    // while the cookies live, s1 serves them and is not retired anywhere
    const states = new Set<string>();
    while (Date.now() < switchedAt + (STICKY_MAX_AGE_SEC - 6) * 1000) {
      for (const x of hosts) states.add(await deploymentState(x, h("s1")));
      await Bun.sleep(1000);
    }
    const report = await hashdJson<{
      members: { name: string; hashes: { hash: string; stickyUntil?: number }[] }[];
    }>(a, ["members"]);
    const until = report.members.flatMap((m) =>
      m.hashes
        .filter((x) => x.hash === h("s1") && x.stickyUntil)
        .map((x) => `${m.name} ${new Date(x.stickyUntil as number).toISOString()}`),
    );
    console.log(
      `s1 states while cookies lived: ${[...states].join(", ")}; stickyUntil reported: ${until.join(", ") || "none"}`,
    );
    // the cookies run out: every client moves to s2
    await Bun.sleep((STICKY_MAX_AGE_SEC + 4) * 1000 - (Date.now() - switchedAt));
    const s = mergeSummaries(await load.stop());
    console.log(summaryLine(s));
    expect(s.failed).toBe(0);
    expect([...states].some((x) => x === "retired" || x.startsWith("gone"))).toBe(false);
    expect(until.length).toBeGreaterThan(0);
    const movedAfter: number[] = [];
    for (const cl of s.clients) {
      const firstS2 = cl.runs.find((r) => r.hash === h("s2"));
      const lastS1 = [...cl.runs].reverse().find((r) => r.hash === h("s1"));
      // on s1 past the switch (its cookie), then on s2 only
      expect(lastS1?.last ?? 0).toBeGreaterThan(switchedAt + 2000);
      expect(firstS2).toBeDefined();
      expect(cl.runs.at(-1)?.hash).toBe(h("s2"));
      movedAfter.push(((firstS2?.first ?? 0) - switchedAt) / 1000);
    }
    movedAfter.sort((p, q) => p - q);
    console.log(
      `sticky clients moved to s2 between ${movedAfter[0]?.toFixed(1)} s and ${movedAfter.at(-1)?.toFixed(1)} s after the switch (max age ${STICKY_MAX_AGE_SEC} s)`,
    );
    expect(movedAfter.at(-1) as number).toBeLessThanOrEqual(STICKY_MAX_AGE_SEC + 2);
    // then s1 is unwanted and retires
    const t0 = Date.now();
    for (const x of hosts)
      await waitFor(
        `s1 retired on ${x.name}`,
        async () => (await deploymentState(x, h("s1"))) === "retired",
        240_000,
      );
    console.log(
      `s1 retired on every host ${((Date.now() - switchedAt) / 1000).toFixed(1)} s after the switch (${Date.now() - t0} ms after the cookies ran out)`,
    );
  });

  test("4a. the driving member's agent is killed (kill -9) mid-rollout: another member finishes it, no step skipped or repeated", async () => {
    const { load, since } = await rolloutAtStep2("good4a", b);
    // no restart: a stays down until the rollout is done
    await a.writeFile("/run/systemd/system/hashd.service.d/no-restart.conf", "[Service]\nRestart=no\n");
    await a.run(["systemctl", "daemon-reload"]);
    const pid = (await a.run(["systemctl", "show", "-p", "MainPID", "--value", "hashd.service"])).trim();
    const killedAt = Date.now();
    await a.run(["kill", "-9", pid]);
    console.log(`killed a's agent (pid ${pid}) at ${new Date(killedAt).toISOString().slice(11, 23)}`);
    let done: RolloutView;
    try {
      done = await waitStatus(b, "done", 240_000);
    } finally {
      await a.run(["rm", "-f", "/run/systemd/system/hashd.service.d/no-restart.conf"]);
      await a.run(["systemctl", "daemon-reload"]);
      await a.run(["systemctl", "start", "hashd.service"]);
    }
    await expectFinishedWithoutA(load, since, killedAt, done, "the kill");
    await waitFor(
      "a alive again everywhere",
      async () => {
        const views = await Promise.all(
          hosts.map((x) => hashdJson<{ members: { state: string }[] }>(x, ["members"])),
        );
        return views.every((v) => v.members.filter((m) => m.state === "alive").length === 3);
      },
      120_000,
    );
    // a's own history misses the writes made while it was down (history is per agent); its record converges
    await waitFor(
      "a sees the rollout done",
      async () => (await status(a)).rollout.status === "done",
      60_000,
    ).catch(async (e) => {
      console.log(`a sees ${JSON.stringify(await status(a))}`);
      console.log(`a's history:\n${describeHistory(await history(a, since))}`);
      console.log(`b's history:\n${describeHistory(await history(b, since))}`);
      console.log(`a's members: ${JSON.stringify(await hashdJson(a, ["members"]))}`);
      throw e;
    });
  });

  test("4b. the driver's link is cut mid-rollout: the majority side finishes it, no step skipped or repeated", async () => {
    const { load, since } = await rolloutAtStep2("good4b", c);
    const cutAt = Date.now();
    await a.setLinkUp(false);
    console.log(`cut a's link at ${new Date(cutAt).toISOString().slice(11, 23)}`);
    let done: RolloutView;
    try {
      done = await waitStatus(b, "done", 240_000);
      // the cut-off member never drives alone
      const aView = await status(a);
      console.log(`a (cut off) sees: ${aView.summary}`);
    } finally {
      await a.setLinkUp(true);
    }
    await expectFinishedWithoutA(load, since, cutAt, done, "the cut");
    await waitFor(
      "a sees the rollout done after the heal",
      async () => (await status(a)).rollout.status === "done",
      180_000,
    ).catch(async (e) => {
      for (const x of hosts) {
        const v = await hashdJson<{ members: { name: string; state: string }[] }>(x, ["members"]);
        console.log(`${x.name} sees ${v.members.map((m) => `${m.name}:${m.state}`).join(" ")}`);
      }
      console.log(`a sees ${(await status(a)).summary}`);
      throw e;
    });
    const ha = await history(a, since);
    console.log(`a's history after the heal:\n${describeHistory(ha)}`);
    expect(rolloutSteps(ha).at(-1)).toBe("done:3");
  });
});
