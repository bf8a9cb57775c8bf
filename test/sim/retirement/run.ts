/**
 * One simulated schedule from one seed: boot a cluster, deploy and alias every app, then a
 * stretch of random deploys, alias changes, requests, jobs, crashes and partitions; then heal,
 * restart everyone, stop the traffic, and wait for the cluster to reach its final state.
 *
 *   bun bench/retirement-sim/run.ts --seed <seed> [--chaos-ms <ms>]
 *
 * replays one seed: the trace (deploys, alias writes, crashes, partitions, retirements, failed
 * requests), its figures and its failures (see `failuresOf`).
 */
import type { RetentionPolicy } from "../../../src/agent/aliases/alias-service.ts";
import type { Planner } from "../../../src/agent/retirement/plan.ts";
import { type MemberView, RetirementPlanner } from "../../../src/agent/retirement/planner.ts";
import { randomBetween, randomFloat, Xoshiro128 } from "../../../src/lib/prng.ts";
import { Chaos } from "./chaos.ts";
import { Checker, type Excused, type Violation } from "./properties.ts";
import { Workload, type WorkloadStats } from "./workload.ts";
import { START, World } from "./world.ts";

export interface Setup {
  size: number;
  /** the planner's quiet period (the agent's quietSec) */
  quietMs: number;
  loss: number;
  delay: [number, number];
  policy: RetentionPolicy;
}

export interface RunOptions {
  seed: number;
  /** how long the random schedule runs before the cluster is healed and quiet */
  chaosMs?: number;
  /** the most the cluster may take to reach its final state once healed and quiet */
  livenessBoundMs?: number;
  /** bugs to plant (to check that the properties catch them) */
  plant?: {
    /** a planner other than the real one */
    newPlanner?: (quietMs: number) => Planner;
    /** a wrong cluster view given to the planner */
    view?: (view: MemberView[]) => MemberView[];
    /** a retirer that does not read the alias table again right before it stops a hash */
    noRecheck?: boolean;
    /** the setup under which the bug shows (over the seed's; `setup` still wins) */
    setup?: Partial<Setup>;
  };
  setup?: Partial<Setup>;
  trace?: (line: string) => void;
}

export interface RunReport {
  seed: number;
  setup: Setup;
  simMs: number;
  retirements: number;
  /** per retirement: ms from the drain on that member to the retirement there */
  timeToRetireMs: number[];
  /** unsafe retirements: every property broken at a retirement (properties.ts) */
  violations: Violation[];
  excused: Excused[];
  /** ms from healed, restarted and traffic stopped to the final state, or null if the bound passed first */
  livenessMs: number | null;
  pending: string[];
  wantedNowhere: string[];
  keepLastDisagreements: string[];
  /**
   * copies no longer wanted anywhere, still live at the end, that should have retired (Checker.keptForever:
   * asserted), copies that missed their alias on a member included
   */
  keptForever: string[];
  /** ... of hashes only lost alias writes named, on members that do not run them (a known gap) */
  keptUnseenAlias: string[];
  /**
   * Members that, at the end, do not see each other (alive or suspect). When every member of one
   * side restarted during a partition, neither side remembers the other; gossip's reconnect (the
   * seeds that are not alive members, every 30 s) makes them meet again, so this is a failure.
   */
  split: string[];
  /**
   * Members still suspected at the end, minutes after the last failure: a gossip matter (the
   * planner counts suspects as visible, so retirement is not affected), shown for the record.
   */
  stuckSuspects: string[];
  stats: WorkloadStats;
  /** agent crashes (kill -9) and graceful stops */
  crashes: number;
  /** ... of which crashes */
  kills: number;
  partitions: number;
  /** `kept` events the agents' retirers recorded (one per change of verdict of a hash once wanted) */
  keptEvents: number;
}

/** How long gossip may take to carry a fact between members that stay connected (up to 5% loss). */
export const FRESH_MS = 5000;
/** How long two members may take to know each other again after a crash or partition between them. */
export const HEAL_MS = 120_000;
/** ... and other members, while a crash or partition elsewhere slows gossip down (push-pull: 30 s). */
export const SLOW_MS = 45_000;

/** The cluster a seed picks: 3 to 7 members, up to 5% loss, mostly the default retention policy. */
export function setupOf(seed: number): Setup {
  const rng = new Xoshiro128((seed * 2654435761) >>> 0);
  const p = randomFloat(rng);
  const policy: RetentionPolicy =
    p < 0.8 ? { kind: "retire" } : p < 0.9 ? { kind: "keep-last", count: 2 } : { kind: "keep" };
  const q = randomFloat(rng);
  return {
    size: randomBetween(rng, 3, 7),
    quietMs: q < 0.4 ? 10_000 : q < 0.7 ? 3000 : q < 0.9 ? 1000 : 0,
    loss: randomFloat(rng) < 0.3 ? 0 : randomFloat(rng) * 0.05,
    delay: [1, randomBetween(rng, 2, 60)],
    policy,
  };
}

export function runSeed(options: RunOptions): RunReport {
  const setup = { ...setupOf(options.seed), ...options.plant?.setup, ...options.setup };
  const { quietMs } = setup;
  const newPlanner = options.plant?.newPlanner ?? ((q: number) => new RetirementPlanner({ quietMs: q }));
  const w = new World({
    seed: options.seed,
    ...setup,
    newPlanner: () => newPlanner(quietMs),
    mapView: options.plant?.view,
    noRecheck: options.plant?.noRecheck,
    trace: options.trace,
  });
  const workload = new Workload(w);
  const chaos = new Chaos(w);
  const checker = new Checker(w, workload, { freshMs: FRESH_MS, healMs: HEAL_MS, slowMs: SLOW_MS });
  w.onEffect = (agent, action, effect, input) => checker.onEffect(agent, action, effect, input);
  w.onAliasChange = (agent) => checker.onAliasChange(agent);

  w.trace(`seed ${options.seed}: ${JSON.stringify(setup)}`);
  workload.bootstrap();
  w.advance(15_000);
  workload.start(300, 6000, 4000);
  chaos.start(12_000);
  w.advance(options.chaosMs ?? 60_000);

  // Heal, restart everyone, stop deploys and traffic; wait for the last request and job to end
  // and for the last deploy's delayed alias switch.
  chaos.calm();
  workload.ops = false;
  workload.traffic = false;
  w.trace("calm: healed, everyone up, no new traffic");
  const calmAt = w.now;
  const bound = options.livenessBoundMs ?? 240_000;
  let livenessMs: number | null = null;
  // the last requests and jobs end, the last deploy's alias switch happens, and then...
  while (w.now - calmAt <= bound) {
    if (workload.quiet && w.now - calmAt >= 15_000 && checker.pending().length === 0) {
      livenessMs = w.now - calmAt;
      break;
    }
    w.advance(1000);
  }
  // ... and it stays there.
  if (livenessMs !== null) w.advance(20_000);
  const pending = checker.pending();
  if (livenessMs !== null && pending.length > 0) livenessMs = null;
  w.trace(`done: liveness ${livenessMs === null ? "NOT reached" : `${livenessMs} ms`}`);

  return {
    seed: options.seed,
    setup,
    simMs: w.now - START,
    retirements: checker.retirements,
    timeToRetireMs: checker.timeToRetireMs,
    violations: checker.violations,
    excused: checker.excused,
    livenessMs,
    pending,
    wantedNowhere: checker.wantedNowhere(),
    keepLastDisagreements: checker.keepLastDisagreements(),
    ...keptForever(checker),
    split: w.agents.flatMap((a) =>
      w.agents
        .filter((b) => !visible(a.node.memberStatus(b.name)))
        .map((b) => `${a.name} does not see ${b.name}`),
    ),
    stuckSuspects: w.agents.flatMap((a) =>
      w.agents
        .filter((b) => a.node.memberStatus(b.name) === "suspect")
        .map((b) => `${a.name} suspects ${b.name}`),
    ),
    stats: workload.stats,
    crashes: chaos.crashes,
    kills: chaos.kills,
    partitions: chaos.partitions,
    keptEvents: w.agents.reduce((n, a) => n + a.keptEvents, 0),
  };
}

const keptForever = (checker: Checker): Pick<RunReport, "keptForever" | "keptUnseenAlias"> => {
  const { asserted, unseenAlias } = checker.keptForever();
  return { keptForever: asserted, keptUnseenAlias: unseenAlias };
};

const visible = (s: string | null) => s === "alive" || s === "suspect";

/** The command that replays a seed: its trace, then its report and failures. */
export const replayCommand = (seed: number, chaosMs?: number): string =>
  `bun bench/retirement-sim/run.ts --seed ${seed}${chaosMs === undefined ? "" : ` --chaos-ms ${chaosMs}`}`;

export interface Failure {
  /**
   * unsafe: a property broken at a retirement; kept forever: a copy no longer wanted that never
   * retired; other: the rest of what the run must reach (liveness, no split, no broken call...)
   */
  kind: "unsafe" | "kept forever" | "other";
  /** one line, with the seed and its replay command */
  text: string;
}

/** Everything wrong with one run, each with its seed and replay command. */
export function failuresOf(r: RunReport, chaosMs?: number): Failure[] {
  const replay = `\n    replay: ${replayCommand(r.seed, chaosMs)}`;
  const what = `seed ${r.seed} (${r.setup.size} members, ${(r.setup.loss * 100).toFixed(1)}% loss, quiet ${r.setup.quietMs} ms, policy ${r.setup.policy.kind})`;
  const out: Failure[] = [];
  const other = (text: string) => out.push({ kind: "other", text: `${what}: ${text}${replay}` });
  for (const v of r.violations) {
    const at = ((v.at - START) / 1000).toFixed(3);
    out.push({
      kind: "unsafe",
      text: `${what}: ${v.property} when ${v.member} retired ${v.hash.slice(0, 6)} at ${at} s: ${v.detail}${replay}`,
    });
  }
  if (r.keptForever.length > 0)
    out.push({
      kind: "kept forever",
      text: `${what}: ${r.keptForever.length} cop${r.keptForever.length === 1 ? "y" : "ies"} no longer wanted still live at the end: ${r.keptForever.slice(0, 4).join("; ")}${replay}`,
    });
  if (r.split.length > 0) other(`ended split: ${r.split.slice(0, 3).join("; ")}`);
  if (r.livenessMs === null)
    other(`not in its final state once healed and quiet: ${r.pending.slice(0, 4).join("; ")}`);
  if (r.stats.aliasFailuresCalm > 0)
    other(
      `${r.stats.aliasFailuresCalm} request(s) by alias found no live hash, retired on some member though live on another, with no crash or partition in the minute before`,
    );
  for (const b of r.stats.brokenCalls.slice(0, 3))
    other(
      `${b.caller.slice(0, 6)} on ${b.member} could not call ${b.callee.slice(0, 6)}: ${b.why}${b.deployRace ? " (its deploy raced the retirement of that reference)" : ""}`,
    );
  if (r.wantedNowhere.length > 0)
    other(`wanted but running on no member: ${r.wantedNowhere.map((h) => h.slice(0, 6)).join(", ")}`);
  if (r.keepLastDisagreements.length > 0)
    other(`kept by keep-last on some members only: ${r.keepLastDisagreements.join(", ")}`);
  return out;
}
