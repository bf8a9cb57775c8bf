/**
 * The retirement simulator's campaign: many seeds of test/sim/retirement (each a cluster of 3-7
 * simulated agents running the agent's own retirement `plan` on real gossip, with deploys, alias
 * switches, alias races from several members, rollbacks, pins, requests, jobs with holds, kill -9
 * crashes, graceful stops and partitions), then the figures that matter:
 *
 *   bun bench/retirement-sim/run.ts                      10,000 seeds from seed 1
 *   bun bench/retirement-sim/run.ts --seeds 500 --from 20000 [--jobs 2] [--chaos-ms 300000] [--strict]
 *   bun bench/retirement-sim/run.ts --seed 123456         one seed: its trace, figures and failures
 *
 * Prints the seeds run, the wall time, the unsafe retirements (a property of properties.ts broken
 * at a retirement: a hash stopped while wanted, while a dependent runs or work is in flight or
 * held on it where the retiring member knew it or should have), the copies kept forever (no longer
 * wanted anywhere, nothing depends on them, still live at the end once healed and quiet), the
 * time from drain to retirement, what the members could not know (excused, by cause), and for
 * every failure the command that replays its seed. Exits 1 if any retirement was unsafe; with
 * --strict, also if any seed failed otherwise (a copy kept forever, or anything else the test
 * suite fails on: liveness, a split, a broken call...).
 *
 * Seeds run on `--jobs` worker threads (default: one per core); the result does not depend on it.
 */
import { availableParallelism } from "node:os";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { type Failure, failuresOf, replayCommand, runSeed } from "../../test/sim/retirement/run.ts";

/** What a campaign keeps of one seed. */
interface SeedSummary {
  seed: number;
  quietMs: number;
  simMs: number;
  retirements: number;
  timeToRetireMs: number[];
  failures: Failure[];
  /** copies kept forever at the end of the run */
  keptForever: number;
  /** ... of hashes only lost alias writes named, on members that do not run them (known gap) */
  keptUnseenAlias: number;
  excused: Record<string, number>;
  livenessMs: number | null;
  crashes: number;
  kills: number;
  partitions: number;
  aliasWrites: number;
  aliasRaces: number;
  rollbacks: number;
  requests: number;
  jobs: number;
  keptEvents: number;
  /** weighted alias writes, of them rollout writes; sticky clients, their returns, failed returns */
  weightedWrites: number;
  rolloutWrites: number;
  stickyClients: number;
  stickyRequests: number;
  stickyFailures: number;
  stuckSuspects: boolean;
}

function summarize(seed: number, chaosMs: number | undefined, trace?: (line: string) => void): SeedSummary {
  const r = runSeed({ seed, chaosMs, trace });
  const excused: Record<string, number> = {};
  for (const e of r.excused) excused[e.category] = (excused[e.category] ?? 0) + 1;
  return {
    seed,
    quietMs: r.setup.quietMs,
    simMs: r.simMs,
    retirements: r.retirements,
    timeToRetireMs: r.timeToRetireMs,
    failures: failuresOf(r, chaosMs),
    keptForever: r.keptForever.length,
    keptUnseenAlias: r.keptUnseenAlias.length,
    excused,
    livenessMs: r.livenessMs,
    crashes: r.crashes,
    kills: r.kills,
    partitions: r.partitions,
    aliasWrites: r.stats.aliasWrites,
    aliasRaces: r.stats.aliasRaces,
    rollbacks: r.stats.rollbacks,
    requests: r.stats.requests,
    jobs: r.stats.jobs,
    keptEvents: r.keptEvents,
    weightedWrites: r.stats.weightedWrites,
    rolloutWrites: r.stats.rolloutWrites,
    stickyClients: r.stats.stickyClients,
    stickyRequests: r.stats.stickyRequests,
    stickyFailures: r.stats.stickyFailures,
    stuckSuspects: r.stuckSuspects.length > 0,
  };
}

// ---- worker: runs the seeds it is sent --------------------------------------------------------

interface WorkerData {
  chaosMs: number | undefined;
}

if (!isMainThread) {
  const { chaosMs } = workerData as WorkerData;
  parentPort?.on("message", (seeds: number[]) => {
    parentPort?.postMessage(seeds.map((seed) => summarize(seed, chaosMs)));
  });
}

// ---- main ---------------------------------------------------------------------------------------

interface Options {
  from: number;
  seeds: number;
  jobs: number;
  chaosMs: number | undefined;
  one: number | undefined;
  strict: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    from: 1,
    seeds: 10_000,
    jobs: availableParallelism(),
    chaosMs: undefined,
    one: undefined,
    strict: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--strict") {
      options.strict = true;
      continue;
    }
    const value = Number(argv[++i]);
    if (!Number.isInteger(value) || value < 0) usage(`${flag} wants a whole number`);
    if (flag === "--seeds") options.seeds = value;
    else if (flag === "--from") options.from = value;
    else if (flag === "--seed") options.one = value;
    else if (flag === "--jobs") options.jobs = Math.max(1, value);
    else if (flag === "--chaos-ms") options.chaosMs = value;
    else usage(`unknown argument ${flag}`);
  }
  return options;
}

function usage(why: string): never {
  console.error(
    `${why}\nusage: bun bench/retirement-sim/run.ts [--seeds N] [--from S] [--jobs J] [--chaos-ms MS] [--strict] | --seed S [--chaos-ms MS]`,
  );
  process.exit(2);
}

/** Runs the seeds on `jobs` workers, in batches handed out as workers free up. */
async function runAll(
  seeds: number[],
  options: Options,
  progress: (done: number) => void,
): Promise<SeedSummary[]> {
  const out: SeedSummary[] = [];
  if (options.jobs === 1) {
    for (const seed of seeds) {
      out.push(summarize(seed, options.chaosMs));
      progress(out.length);
    }
    return out;
  }
  const BATCH = 10;
  let next = 0;
  const take = () => {
    const batch = seeds.slice(next, next + BATCH);
    next += batch.length;
    return batch;
  };
  const data: WorkerData = { chaosMs: options.chaosMs };
  await Promise.all(
    Array.from({ length: Math.min(options.jobs, Math.ceil(seeds.length / BATCH)) }, async () => {
      const worker = new Worker(import.meta.path, { workerData: data });
      try {
        for (let batch = take(); batch.length > 0; batch = take()) {
          const done = await new Promise<SeedSummary[]>((resolve, reject) => {
            worker.once("message", resolve);
            worker.once("error", reject);
            worker.postMessage(batch);
          });
          worker.removeAllListeners("error");
          out.push(...done);
          progress(out.length);
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  return out.sort((a, b) => a.seed - b.seed);
}

const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

const seconds = (ms: number): string =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 1000).toFixed(1)} s`;

const distribution = (values: number[]): string => {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return "none";
  return [50, 90, 99]
    .map((p) => `p${p} ${seconds(percentile(sorted, p))}`)
    .concat(`max ${seconds(sorted.at(-1) as number)}`)
    .join(", ");
};

const count = (n: number): string => n.toLocaleString("en-US");

const wall = (ms: number): string => {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
};

function report(summaries: SeedSummary[], wallMs: number, options: Options): string[] {
  const sum = (f: (s: SeedSummary) => number) => summaries.reduce((n, s) => n + f(s), 0);
  const failures = summaries.flatMap((s) => s.failures);
  const unsafe = failures.filter((f) => f.kind === "unsafe");
  const keptForever = failures.filter((f) => f.kind === "kept forever");
  const other = failures.filter((f) => f.kind === "other");
  const keptCopies = sum((s) => s.keptForever);
  const unseen = summaries.filter((s) => s.keptUnseenAlias > 0);
  const times = summaries.flatMap((s) => s.timeToRetireMs);
  const beyond = summaries.flatMap((s) => s.timeToRetireMs.map((t) => t - s.quietMs));
  const quietPeriods = [...new Set(summaries.map((s) => s.quietMs))].sort((a, b) => a - b);
  const excused = new Map<string, number>();
  for (const s of summaries)
    for (const [k, n] of Object.entries(s.excused)) excused.set(k, (excused.get(k) ?? 0) + n);
  const liveness = summaries.flatMap((s) => (s.livenessMs === null ? [] : [s.livenessMs]));
  const last = summaries.at(-1)?.seed ?? options.from;
  const lines = [
    `seeds run:            ${count(summaries.length)} (${options.from}..${last}), ${options.chaosMs ?? 60_000} ms of chaos each, ${options.jobs} job(s)`,
    `wall time:            ${wall(wallMs)} (${(wallMs / Math.max(1, summaries.length)).toFixed(0)} ms per seed)`,
    `simulated:            ${(sum((s) => s.simMs) / 3_600_000).toFixed(0)} h of cluster time; ${count(sum((s) => s.retirements))} retirements; ${count(sum((s) => s.kills))} agent crashes (kill -9) and ${count(sum((s) => s.crashes - s.kills))} graceful stops; ${count(sum((s) => s.partitions))} partitions; ${count(sum((s) => s.aliasWrites))} alias writes, ${count(sum((s) => s.rollbacks))} rollbacks, ${count(sum((s) => s.aliasRaces))} races of 2-3 members writing one alias within 50 ms; ${count(sum((s) => s.requests))} requests; ${count(sum((s) => s.jobs))} jobs with holds`,
    `unsafe retirements:   ${unsafe.length}`,
    `copies kept forever:  ${keptCopies}${keptForever.length ? ` (in ${keptForever.length} seeds)` : ""}`,
    `  not counted above, a known gap: ${count(sum((s) => s.keptUnseenAlias))} copies in ${unseen.length} seeds of hashes no member running them ever marked wanted (the alias writes naming them were made on members that do not run them, and lost to a later write before reaching one that does)${
      unseen.length
        ? `; e.g. ${unseen
            .slice(0, 3)
            .map((s) => replayCommand(s.seed, options.chaosMs))
            .join(", ")}`
        : ""
    }`,
    `other failures:       ${other.length}${other.length ? " (liveness, split, broken calls, ...: see below)" : ""}`,
    `time to retire (drain to retired, per member and hash): ${distribution(times)}`,
    `  beyond the quiet period: ${distribution(beyond)}`,
    ...quietPeriods.map(
      (q) =>
        `  quiet ${String(q).padStart(5)} ms: ${distribution(summaries.filter((s) => s.quietMs === q).flatMap((s) => s.timeToRetireMs))}`,
    ),
    `final state reached after heal, restart and traffic stop: ${distribution(liveness)}`,
    `weighted and sticky:  ${count(sum((s) => s.weightedWrites))} weighted alias writes (2-4 hashes), ${count(sum((s) => s.rolloutWrites))} writes carrying a rollout; ${count(sum((s) => s.stickyClients))} sticky clients, ${count(sum((s) => s.stickyRequests))} returns, ${count(sum((s) => s.stickyFailures))} of them failed`,
    `kept events recorded by the retirers (one per change of decision): ${count(sum((s) => s.keptEvents))}`,
    "retirements that a fact elsewhere would have prevented, excused (the retiring member could not know it):",
    ...(excused.size === 0
      ? ["  none"]
      : [...excused].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(6)}  ${k}`)),
    `runs ending with a member still suspected (gossip, not asserted): ${summaries.filter((s) => s.stuckSuspects).length}`,
  ];
  if (failures.length > 0) {
    lines.push(`failures (${failures.length}; first 30):`);
    for (const f of failures.slice(0, 30)) lines.push(`  ${f.kind}: ${f.text}`);
    const failed = summaries.filter((s) => s.failures.length > 0).map((s) => s.seed);
    lines.push(`failed seeds (${failed.length}): ${failed.join(" ")}`);
  }
  lines.push(
    `result: ${unsafe.length === 0 ? "SAFE (no unsafe retirement)" : `UNSAFE (${unsafe.length} unsafe retirement(s))`}; ${failures.length === 0 ? "no other failure" : `${keptForever.length} seed(s) with copies kept forever, ${other.length} other failure(s)`}`,
  );
  return lines;
}

/** 1 if a retirement was unsafe (with --strict: if anything failed), else 0. */
const exitCode = (summaries: readonly SeedSummary[], options: Options): number =>
  summaries.some((s) => s.failures.some((f) => options.strict || f.kind === "unsafe")) ? 1 : 0;

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.one !== undefined) {
    const started = performance.now();
    const s = summarize(options.one, options.chaosMs, (line) => console.log(line));
    console.log(`\nseed ${s.seed}, replayed with: ${replayCommand(s.seed, options.chaosMs)}`);
    for (const line of report([s], performance.now() - started, { ...options, from: s.seed, jobs: 1 }))
      console.log(line);
    process.exit(exitCode([s], options));
  }
  const seeds = Array.from({ length: options.seeds }, (_, i) => options.from + i);
  const started = performance.now();
  let told = 0;
  const summaries = await runAll(seeds, options, (done) => {
    if (done - told < 500 && done < seeds.length) return;
    told = done;
    const elapsed = performance.now() - started;
    const eta = (elapsed / done) * (seeds.length - done);
    process.stderr.write(`${done}/${seeds.length} seeds, ${wall(elapsed)}, ~${wall(eta)} to go\n`);
  });
  const lines = report(summaries, performance.now() - started, options);
  for (const line of lines) console.log(line);
  process.exit(exitCode(summaries, options));
}

if (isMainThread) await main();
