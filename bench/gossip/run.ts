/**
 * hashd's gossip side by side with Serf (Debian's serf 0.9.4, memberlist 0.2.2 underneath) on the
 * same five sandbox hosts, in the same run, both with memberlist's LAN defaults (probe 1 s, timeout
 * 500 ms, suspicion multiplier 4, gossip 200 ms to 3, push-pull 30 s) and AES-GCM with a 32-byte key.
 *
 *   bun bench/gossip/run.ts [--trials 10] [--link-trials 3] [--link-settle-sec 40] [--updates 10] [--rest-sec 60]
 *                           [--loss-min 3] [--interval 50] [--sim] [--sim-sizes 5,100,1000]
 *
 * Needs /usr/bin/serf (apt-get install serf; the sandbox masks Debian's serf.service on every host)
 * and /usr/sbin/nft (apt-get install nftables): the kernel here
 * has no sch_netem, so loss is an nftables rule (numgen random) dropping 10% of each host's
 * outgoing packets on eth0, which is what `tc qdisc add dev eth0 root netem loss 10%` would do.
 *
 * Every host runs both agents (hashd on :7946, serf on :7947, RPC on 127.0.0.1:7373) and two
 * watchers (watch.ts) that print each change of its system's view with the wall clock (shared by
 * all hosts). Figures:
 *
 * (a) crash -> dead at every other member: kill -9 of both agents on one host at once (hashd's
 *     unit gets Restart=no for the run), and separately the host's link taken down; the time from
 *     the kill until the last of the four others shows it dead (hashd) / failed (serf).
 * (b) update -> every member: a Serf user event (`serf event -coalesce=false`) vs a hashd state
 *     change (a hold taken or released on host a changes a's report: a new state version), both
 *     from the start of the command on host a that makes it (its client's start-up included) until
 *     the last other member's view has it. Also a hashd alias write (a cluster-wide record, the
 *     closest thing to a user event). hashd's views are polled every --interval ms, Serf's user
 *     events pushed: about half an interval of bias against hashd.
 * (c) bytes sent per member per second at rest: eth0 tx_bytes of every host over --rest-sec with
 *     one system running, minus the same with neither running.
 * (d) false deaths at 10% loss over --loss-min minutes, both systems running.
 * With --sim, the simulator's figures at 5, 100 and 1,000 members (sim-figures.ts) after the sandbox.
 */
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import {
  hashd,
  installCluster,
  newClusterKey,
  releaseHold,
  takeHold,
} from "../../test/sandbox/agent-host.ts";
import { type Host, Sandbox } from "../../test/sandbox/harness.ts";
import { serviceExpr } from "../../test/sandbox/service-closures.ts";
import { bundleWatcher } from "./watch.ts";

const { values } = parseArgs({
  options: {
    trials: { type: "string", default: "10" },
    "link-trials": { type: "string", default: "3" },
    "link-settle-sec": { type: "string", default: "40" },
    updates: { type: "string", default: "10" },
    "rest-sec": { type: "string", default: "60" },
    "loss-min": { type: "string", default: "3" },
    interval: { type: "string", default: "50" },
    sim: { type: "boolean", default: false },
    "sim-sizes": { type: "string", default: "5,100,1000" },
  },
});
const TRIALS = Number(values.trials);
const LINK_TRIALS = Number(values["link-trials"]);
const LINK_SETTLE_SEC = Number(values["link-settle-sec"]);
const UPDATES = Number(values.updates);
const REST_SEC = Number(values["rest-sec"]);
const LOSS_MIN = Number(values["loss-min"]);
const INTERVAL = Number(values.interval);
/** A crash detected slower than this prints each survivor's journal lines about the victim. */
const SLOW_DETECTION_MS = 7500;

const SERF = "/usr/bin/serf";
const SERF_PORT = 7947;
const NAMES = ["a", "b", "c", "d", "e"];
type System = "hashd" | "serf";
const SYSTEMS: System[] = ["hashd", "serf"];
const DEAD: Record<System, string> = { hashd: "dead", serf: "failed" };

for (const [path, install] of [
  [SERF, "apt-get install serf"],
  ["/usr/sbin/nft", "apt-get install nftables"],
]) {
  if (!(await Bun.file(path as string).exists())) {
    console.error(`bench/gossip: ${path} is missing (${install})`);
    process.exit(2);
  }
}

const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? (s[m] as number)
      : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const ms = (xs: number[]) =>
  xs.length === 0
    ? "n/a"
    : `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}; n=${xs.length})`;

// ---- what each host's watchers saw -----------------------------------------------------------------

interface Seen {
  t: number;
  kind: string;
  name?: string;
  state?: string;
  boot?: number;
  seq?: number;
  hash?: string | null;
}

class Watch {
  readonly events: Seen[] = [];
  readonly current = new Map<string, string>();
  constructor(
    readonly host: Host,
    readonly system: System,
    readonly proc: Subprocess,
  ) {
    void this.read();
  }

  private async read(): Promise<void> {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of this.proc.stdout as ReadableStream<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n")) {
        const line = text.slice(0, i);
        text = text.slice(i + 1);
        let ev: Seen;
        try {
          ev = JSON.parse(line) as Seen;
        } catch {
          continue;
        }
        this.events.push(ev);
        if (ev.kind === "down") this.current.clear();
        if (ev.kind === "member" && ev.name) this.current.set(ev.name, ev.state ?? "");
      }
    }
  }

  first(since: number, pred: (e: Seen) => boolean): Seen | undefined {
    return this.events.find((e) => e.t >= since && pred(e));
  }
}

const sleep = (msec: number) => Bun.sleep(msec);

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

// ---- the run --------------------------------------------------------------------------------------

const report: string[] = [];
const sb = await Sandbox.create({ hosts: NAMES, mask: ["serf.service"] });
let hosts: Host[] = [];
try {
  hosts = NAMES.map((n) => sb.host(n));
  const [a] = hosts as [Host];

  log("installing hashd on five hosts (Restart=no for the run: a killed agent stays down)");
  await installCluster(hosts, { key: newClusterKey() });
  await Promise.all(
    hosts.map(async (h) => {
      await h.writeFile("/run/systemd/system/hashd.service.d/bench.conf", "[Service]\nRestart=no\n");
      await h.run(["systemctl", "daemon-reload"]);
    }),
  );
  log("building and lazily activating one service on a (its holds are the state hashd changes)");
  const path = await a.nixBuild(serviceExpr({ name: "bench" }));
  const hash = path.slice(11, 43);
  await a.run(["/usr/local/bin/hashd", "activate", "--lazy", path]);

  // Serf with the same kind of key (32 bytes, AES-GCM), joined through a.
  const serfKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
  const serfProcs = new Map<string, Subprocess>();
  const startSerf = (h: Host) => {
    const join = h === a ? "" : `-retry-join=${a.ip}:${SERF_PORT} -retry-interval=1s`;
    const cmd =
      `echo $$ > /run/serf.pid; exec ${SERF} agent -node=${h.name} -bind=${h.ip}:${SERF_PORT} ` +
      `-rpc-addr=127.0.0.1:7373 -encrypt=${serfKey} ${join} -log-level=warn >>/root/serf.log 2>&1`;
    serfProcs.set(h.name, h.spawn(["/bin/sh", "-c", cmd], { stdout: "ignore", stderr: "ignore" }));
  };
  const stopSerf = async (h: Host, signal: "KILL" | "TERM") => {
    await h.exec(["/bin/sh", "-c", `kill -${signal} $(cat /run/serf.pid)`]);
    await serfProcs.get(h.name)?.exited;
  };
  startSerf(a);
  await sleep(500);
  for (const h of hosts.slice(1)) startSerf(h);

  log("starting the watchers");
  const watcherJs = await bundleWatcher();
  const watches = new Map<string, Record<System, Watch>>();
  for (const h of hosts) {
    await h.writeFile("/root/watch.js", watcherJs);
    const w = {} as Record<System, Watch>;
    for (const s of SYSTEMS) {
      w[s] = new Watch(
        h,
        s,
        h.spawn(["/usr/bin/bun", "/root/watch.js", s, String(INTERVAL)], { stderr: "ignore" }),
      );
    }
    watches.set(h.name, w);
  }
  const watch = (h: Host, s: System) => watches.get(h.name)?.[s] as Watch;
  const allAlive = (s: System, among = hosts) =>
    among.every((h) => NAMES.every((n) => watch(h, s).current.get(n) === "alive"));
  const converge = async (what: string, timeoutMs = 120_000) => {
    await until(what, () => SYSTEMS.every((s) => allAlive(s)), timeoutMs);
  };
  await converge("both systems: every host sees five alive");
  log("both clusters converged");
  await sleep(5000);

  /** curl argv for the agent's control socket (the socket path and URL follow). */
  const control = ["curl", "-sS", "--fail", "--unix-socket"];

  // ---- (a) crash -> dead everywhere ----------------------------------------------------------------
  const detect = async (victim: Host, t0: number, timeoutMs = 90_000) => {
    const survivors = hosts.filter((h) => h !== victim);
    const out = {} as Record<System, number>;
    const detail = {} as Record<System, string>;
    await Promise.all(
      SYSTEMS.map(async (s) => {
        const times = await until(
          `${s}: every survivor sees ${victim.name} ${DEAD[s]}`,
          () => {
            const ts = survivors.map(
              (h) =>
                watch(h, s).first(
                  t0,
                  (e) => e.kind === "member" && e.name === victim.name && e.state === DEAD[s],
                )?.t,
            );
            return ts.every((t) => t !== undefined) ? (ts as number[]) : undefined;
          },
          timeoutMs,
        );
        out[s] = Math.max(...times) - t0;
        detail[s] = survivors.map((h, i) => `${h.name} ${(times[i] as number) - t0}`).join(", ");
      }),
    );
    // hashd's views also show suspicion: when the first survivor suspected the victim
    const suspects = survivors
      .map(
        (h) =>
          watch(h, "hashd").first(
            t0,
            (e) => e.kind === "member" && e.name === victim.name && e.state === "suspect",
          )?.t,
      )
      .filter((t): t is number => t !== undefined);
    const firstSuspect = suspects.length > 0 ? `first suspected at ${Math.min(...suspects) - t0}; ` : "";
    let journal = "";
    if (out.hashd > SLOW_DETECTION_MS) {
      // a slow one: what each survivor's agent logged about the victim (gossip: <name> ... lines)
      const lines = await Promise.all(
        survivors.map(async (h) => {
          const r = await h.exec([
            "journalctl",
            "-u",
            "hashd.service",
            "--no-pager",
            "-o",
            "short-iso-precise",
            `--since=@${(t0 / 1000).toFixed(3)}`,
            `--grep=gossip: ${victim.name} `,
          ]);
          return r.stdout
            .trim()
            .split("\n")
            .map((l) => `    ${h.name}: ${l}`)
            .join("\n");
        }),
      );
      journal = `\n${lines.join("\n")}`;
    }
    return {
      ...out,
      detail: `hashd ${firstSuspect}dead at ${detail.hashd}; serf failed at ${detail.serf}${journal}`,
    };
  };
  const crash: Record<System, number[]> = { hashd: [], serf: [] };
  for (let k = 0; k < TRIALS; k++) {
    const victim = hosts[1 + (k % 4)] as Host;
    const killed = await victim.run([
      "/bin/sh",
      "-c",
      "date +%s%3N; kill -9 $(systemctl show -p MainPID --value hashd.service) $(cat /run/serf.pid)",
    ]);
    const t0 = Number(killed.trim().split("\n")[0]);
    const r = await detect(victim, t0);
    for (const s of SYSTEMS) crash[s].push(r[s]);
    log(`crash ${k + 1}/${TRIALS} (${victim.name}, kill -9): hashd ${r.hashd} ms, serf ${r.serf} ms`);
    log(`  ${r.detail}`);
    await victim.run(["systemctl", "start", "hashd.service"]);
    startSerf(victim);
    await converge(`both systems see ${victim.name} back`);
    await sleep(3000);
  }

  const healthScore = async (h: Host): Promise<number> => {
    const metrics = await h.run([...control, "/run/hashd/control.sock", "http://agent/metrics"]);
    return Number(/^hashd_gossip_health_score (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
  };
  const link: Record<System, number[]> = { hashd: [], serf: [] };
  for (let k = 0; k < LINK_TRIALS; k++) {
    const victim = hosts[4 - (k % 4)] as Host;
    const t0 = Date.now();
    await victim.setLinkUp(false);
    let r: Awaited<ReturnType<typeof detect>>;
    try {
      r = await detect(victim, t0);
    } finally {
      await victim.setLinkUp(true);
    }
    for (const s of SYSTEMS) link[s].push(r[s]);
    log(`link down ${k + 1}/${LINK_TRIALS} (${victim.name}): hashd ${r.hashd} ms, serf ${r.serf} ms`);
    log(`  ${r.detail}`);
    const healStart = Date.now();
    await converge(`both systems heal after ${victim.name}'s link came back`, 180_000);
    const healed = Date.now();
    // The host that was cut off comes back with its Lifeguard health score raised (every probe it
    // made while cut off failed), so it probes slowly for up to ~35 s (score 7 -> 0 at one step per
    // successful probe, each probe interval stretched by the score), in both systems alike. A cut
    // made meanwhile would measure that, not detection: wait until hashd's scores are all 0 and
    // --link-settle-sec have passed since the heal (Serf's score falls by the same rule).
    let settled = false;
    while (!settled && Date.now() - healed < 120_000) {
      const scores = await Promise.all(hosts.map(healthScore));
      settled = scores.every((x) => x === 0);
      if (!settled) await sleep(1000);
    }
    log(`  healed in ${healed - healStart} ms, hashd health scores 0 after ${Date.now() - healed} ms`);
    await sleep(Math.max(3000, LINK_SETTLE_SEC * 1000 - (Date.now() - healed)));
  }

  // ---- (b) update -> every member --------------------------------------------------------------------
  const spread = async (s: System, what: string, t0: number, pred: (e: Seen) => boolean) => {
    const times = await until(
      what,
      () => {
        const ts = hosts.slice(1).map((h) => watch(h, s).first(t0, pred)?.t);
        return ts.every((t) => t !== undefined) ? (ts as number[]) : undefined;
      },
      60_000,
    );
    return Math.max(...times) - t0;
  };
  const update: Record<"serf" | "state" | "alias", number[]> = { serf: [], state: [], alias: [] };
  let holdId = "";
  for (let k = 0; k < UPDATES; k++) {
    let t0 = Date.now();
    await a.run([SERF, "event", "-rpc-addr=127.0.0.1:7373", "-coalesce=false", `bench${k}`, `payload ${k}`]);
    update.serf.push(
      await spread(
        "serf",
        `serf user event bench${k} everywhere`,
        t0,
        (e) => e.kind === "user" && e.name === `bench${k}`,
      ),
    );
    await sleep(1000);

    t0 = Date.now();
    if (holdId === "") {
      holdId = await takeHold(a, hash, 3600);
    } else {
      await releaseHold(a, hash, holdId);
      holdId = "";
    }
    const own = await until(
      "a's own new state version",
      () => watch(a, "hashd").first(t0, (e) => e.kind === "state" && e.name === "a"),
      10_000,
    );
    update.state.push(
      await spread(
        "hashd",
        `a's state ${own.boot}.${own.seq} everywhere`,
        t0,
        (e) => e.kind === "state" && e.name === "a" && e.boot === own.boot && (e.seq ?? 0) >= (own.seq ?? 0),
      ),
    );
    await sleep(1000);

    t0 = Date.now();
    await a.run([
      ...control,
      "/run/hashd/control.sock",
      "-H",
      "content-type: application/json",
      "-d",
      JSON.stringify({ set: { [`bench${k}`]: hash } }),
      "http://agent/v1/aliases",
    ]);
    update.alias.push(
      await spread(
        "hashd",
        `alias bench${k} everywhere`,
        t0,
        (e) => e.kind === "alias" && e.name === `bench${k}`,
      ),
    );
    log(
      `update ${k + 1}/${UPDATES}: serf event ${update.serf.at(-1)} ms, hashd state ${update.state.at(-1)} ms, hashd alias ${update.alias.at(-1)} ms`,
    );
    await sleep(1000);
  }

  // ---- (c) bytes per member per second at rest -------------------------------------------------------
  const txBytes = async () =>
    Promise.all(
      hosts.map(async (h) => Number(await h.run(["cat", "/sys/class/net/eth0/statistics/tx_bytes"]))),
    );
  const restRate = async (seconds: number) => {
    const before = await txBytes();
    const t = performance.now();
    await sleep(seconds * 1000);
    const after = await txBytes();
    const secs = (performance.now() - t) / 1000;
    return after.reduce((sum, x, i) => sum + (x - (before[i] ?? 0)), 0) / hosts.length / secs;
  };
  log("at rest: serf stopped, hashd alone (40 s to settle, then measured)");
  await Promise.all(hosts.map((h) => stopSerf(h, "TERM")));
  await sleep(40_000);
  const hashdRest = await restRate(REST_SEC);
  log("at rest: neither (baseline)");
  await Promise.all(hosts.map((h) => h.run(["systemctl", "stop", "hashd.service"])));
  await sleep(5000);
  const baseline = await restRate(Math.min(REST_SEC, 20));
  log("at rest: serf alone");
  startSerf(a);
  await sleep(500);
  for (const h of hosts.slice(1)) startSerf(h);
  await until("serf converges", () => allAlive("serf"), 60_000);
  await sleep(40_000);
  const serfRest = await restRate(REST_SEC);
  log(
    `at rest: hashd ${hashdRest.toFixed(0)} B/s, serf ${serfRest.toFixed(0)} B/s, baseline ${baseline.toFixed(0)} B/s`,
  );

  // ---- (d) false deaths at 10% loss --------------------------------------------------------------------
  await Promise.all(hosts.map((h) => h.run(["systemctl", "start", "hashd.service"])));
  await converge("both systems converge before the loss phase");
  await sleep(10_000);
  const rule = `table inet hashd_bench {
  chain out {
    type filter hook output priority 0; policy accept;
    oifname "eth0" numgen random mod 100 < 10 counter drop
  }
}
`;
  const txPackets = async () =>
    Promise.all(
      hosts.map(async (h) => Number(await h.run(["cat", "/sys/class/net/eth0/statistics/tx_packets"]))),
    );
  const packetsBefore = await txPackets();
  await Promise.all(hosts.map((h) => h.run(["nft", "-f", "-"], { input: rule })));
  const lossStart = Date.now();
  log(`10% loss on every host's eth0 for ${LOSS_MIN} min`);
  await sleep(LOSS_MIN * 60_000);
  const dropped = await Promise.all(
    hosts.map(async (h) => {
      const text = await h.run(["nft", "list", "table", "inet", "hashd_bench"]);
      await h.run(["nft", "delete", "table", "inet", "hashd_bench"]);
      return Number(/counter packets (\d+)/.exec(text)?.[1] ?? 0);
    }),
  );
  const lossEnd = Date.now();
  const packetsAfter = await txPackets();
  const sent = packetsAfter.reduce((s, x, i) => s + x - (packetsBefore[i] ?? 0), 0);
  const droppedTotal = dropped.reduce((s, x) => s + x, 0);
  const inLoss = (s: System, state: string) =>
    hosts.reduce(
      (n, h) =>
        n +
        watch(h, s).events.filter(
          (e) => e.t >= lossStart && e.t <= lossEnd && e.kind === "member" && e.state === state,
        ).length,
      0,
    );
  const loss = {
    hashd: { deaths: inLoss("hashd", "dead"), suspicions: inLoss("hashd", "suspect") },
    serf: { deaths: inLoss("serf", "failed"), suspicions: Number.NaN },
  };
  log(
    `loss: ${droppedTotal} of ${droppedTotal + sent} packets dropped (${((100 * droppedTotal) / (droppedTotal + sent)).toFixed(1)}%); ` +
      `hashd ${loss.hashd.deaths} false deaths, ${loss.hashd.suspicions} suspicions; serf ${loss.serf.deaths} false deaths`,
  );

  const version = (await hashd(a, ["--version"])).stdout.trim();
  const serfVersion = (await a.run([SERF, "version"])).split("\n")[0]?.trim();
  report.push(
    `gossip on 5 sandbox hosts: hashd ${version} vs Debian serf 0.9.4~ds1 ("${serfVersion}", memberlist 0.2.2), both with`,
    "memberlist's LAN defaults and a 32-byte AES-GCM key, both running on every host at once (except at rest);",
    `watchers poll each host's view every ${INTERVAL} ms; times are until the LAST of the other four members`,
    "",
    "| figure | hashd | Serf |",
    "| --- | --- | --- |",
    `| crash (kill -9 of the agent) -> dead at all 4 others, median (min-max) | ${ms(crash.hashd)} | ${ms(crash.serf)} |`,
    `| host cut off (link down) -> dead at all 4 others | ${ms(link.hashd)} | ${ms(link.serf)} |`,
    `| update -> all 4 others (hashd: state change; Serf: user event) | ${ms(update.state)} | ${ms(update.serf)} |`,
    `| hashd alias write -> all 4 others | ${ms(update.alias)} | - |`,
    `| bytes sent per member per second at rest (eth0 tx, ${REST_SEC} s, idle ${baseline.toFixed(0)} B/s subtracted) | ${(hashdRest - baseline).toFixed(0)} B/s | ${(serfRest - baseline).toFixed(0)} B/s |`,
    `| 10% loss for ${LOSS_MIN} min (${((100 * droppedTotal) / (droppedTotal + sent)).toFixed(1)}% of packets dropped): false deaths seen (observer x member) | ${loss.hashd.deaths} (${loss.hashd.suspicions} suspicions) | ${loss.serf.deaths} (suspicions not visible) |`,
  );
} finally {
  await sb.destroy();
}
console.log(report.join("\n"));

if (values.sim) {
  const { measure } = await import("../gossip-sim/figures.ts");
  console.log("\nsimulator (same core, virtual clock and network, one-way delay 1-10 ms, LAN defaults):");
  console.log(
    "| members | crash -> dead everywhere | small state update | ~3 KB state update | sent per member at rest | 10% loss: false deaths (suspicions) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const size of (values["sim-sizes"] ?? "").split(",").map(Number)) {
    log(`simulating ${size} members`);
    const f = measure(size, 2024 + size);
    console.log(
      `| ${size} | ${ms(f.crashToAllDeadMs)} | ${ms(f.smallUpdateMs)} | ${ms(f.largeUpdateMs)} | ` +
        `${f.restUdpBps.toFixed(0)} B/s UDP + ${f.restStreamBps.toFixed(0)} B/s push-pull | ` +
        `${f.lossFalseDeaths} in ${f.lossMinutes} min (${f.lossSuspicions}) |`,
    );
  }
}
