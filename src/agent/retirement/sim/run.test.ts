/**
 * Top-down retirement over many random schedules in the gossip simulator (see properties.ts for
 * the properties exactly as asserted). Every failure names its seed and the command replaying it.
 *
 *   HASHD_RETIRE_SIM_SEEDS=1000 HASHD_RETIRE_SIM_FIRST=5000   more or other seeds
 *   HASHD_RETIRE_SIM_SOAK=2000                                 a soak: that many seeds of 5 min of chaos
 *   HASHD_RETIRE_SIM_SEED=123                                  one seed, with its trace
 */
import { describe, expect, test } from "bun:test";
import type { MemberView, PlannerConfig, PlannerInput } from "../planner.ts";
import { RetirementPlanner } from "../planner.ts";
import type { PlannerLike } from "./agent-model.ts";
import { HOLD_LOST } from "./properties.ts";
import { type RunOptions, type RunReport, replayCommand, runSeed } from "./run.ts";
import { World } from "./world.ts";

const env = (name: string): number | undefined =>
  process.env[name] === undefined ? undefined : Number(process.env[name]);
const ONE = env("HASHD_RETIRE_SIM_SEED");
const SOAK = env("HASHD_RETIRE_SIM_SOAK");
const FIRST = env("HASHD_RETIRE_SIM_FIRST") ?? 1;
const COUNT = ONE !== undefined ? 1 : (SOAK ?? env("HASHD_RETIRE_SIM_SEEDS") ?? 200);
const CHAOS_MS = SOAK !== undefined ? 300_000 : undefined;

/** Everything wrong with one run, each line with its seed and replay command. */
function failuresOf(r: RunReport, chaosMs?: number): string[] {
  const replay = `\n    replay: ${replayCommand(r.seed, chaosMs)}`;
  const what = `seed ${r.seed} (${r.setup.size} members, ${(r.setup.loss * 100).toFixed(1)}% loss, quiet ${r.setup.quietMs} ms, policy ${r.setup.policy.kind})`;
  const out: string[] = [];
  for (const v of r.violations.filter((x) => x.property !== HOLD_LOST)) {
    const at = ((v.at - 1_700_000_000_000) / 1000).toFixed(3);
    out.push(
      `${what}: ${v.property} when ${v.member} retired ${v.hash.slice(0, 6)} at ${at} s: ${v.detail}${replay}`,
    );
  }
  if (r.livenessMs === null)
    out.push(
      `${what}: not in its final state once healed and quiet: ${r.pending.slice(0, 4).join("; ")}${replay}`,
    );
  if (r.stats.aliasFailuresCalm > 0)
    out.push(
      `${what}: ${r.stats.aliasFailuresCalm} request(s) by alias found no live hash, retired on some member though live on another, with no crash or partition in the minute before${replay}`,
    );
  for (const b of r.stats.brokenCalls.filter((x) => !x.deployRace).slice(0, 3))
    out.push(
      `${what}: ${b.caller.slice(0, 6)} on ${b.member} could not call ${b.callee.slice(0, 6)}: ${b.why}${replay}`,
    );
  return out;
}

describe("top-down retirement in the gossip simulator", () => {
  test(
    `safety at every retirement and liveness once healed, over ${COUNT} random schedule(s) from seed ${ONE ?? FIRST}`,
    () => {
      const started = performance.now();
      const failures: string[] = [];
      const price = new Map<string, number>();
      const aliasFailures = new Map<string, number>();
      const splits: string[] = [];
      const liveness: number[] = [];
      const totals = {
        retirements: 0,
        requests: 0,
        aliasFailuresCalm: 0,
        aliasFailuresRetired: 0,
        holdsForgotten: 0,
        guardLeaks: 0,
        wantedNowhere: 0,
        keepLast: 0,
        deployRaces: 0,
        stuckSuspects: 0,
      };
      for (let seed = ONE ?? FIRST; seed < (ONE ?? FIRST) + COUNT; seed++) {
        const trace = ONE !== undefined ? (line: string) => console.log(line) : undefined;
        const r = runSeed({ seed, chaosMs: CHAOS_MS, trace });
        if (r.split.length === 0) failures.push(...failuresOf(r, CHAOS_MS));
        // the known gap of cluster.ts (see "known gaps" below): reported, not asserted
        else splits.push(`seed ${seed}: ${r.split.slice(0, 2).join("; ")}: ${replayCommand(seed, CHAOS_MS)}`);
        for (const e of r.excused) price.set(e.category, (price.get(e.category) ?? 0) + 1);
        if (r.livenessMs !== null) liveness.push(r.livenessMs);
        totals.retirements += r.retirements;
        totals.requests += r.stats.requests;
        for (const [why, n] of Object.entries(r.stats.aliasFailures))
          aliasFailures.set(why, (aliasFailures.get(why) ?? 0) + (n ?? 0));
        totals.aliasFailuresCalm += r.stats.aliasFailuresCalm;
        totals.aliasFailuresRetired += r.stats.aliasFailuresRetired;
        totals.holdsForgotten += r.violations.filter((v) => v.property === HOLD_LOST).length;
        totals.guardLeaks += r.guardLeaks.length;
        totals.wantedNowhere += r.wantedNowhere.length;
        totals.keepLast += r.keepLastDisagreements.length;
        totals.deployRaces += r.stats.brokenCalls.filter((b) => b.deployRace).length;
        if (r.stuckSuspects.length > 0) {
          totals.stuckSuspects++;
          console.log(`seed ${r.seed}: still suspected at the end (gossip): ${r.stuckSuspects.join("; ")}`);
        }
      }
      liveness.sort((a, b) => a - b);
      console.log(
        [
          `${COUNT} schedule(s) in ${((performance.now() - started) / 1000).toFixed(1)} s: ${totals.retirements} retirements, ${totals.requests} requests`,
          `requests by alias that found no live hash: ${[...aliasFailures].map(([k, n]) => `${n} ${k}`).join(", ") || "none"} (${totals.aliasFailuresRetired} to a hash retired everywhere; ${totals.aliasFailuresCalm} to a hash retired on some member with no crash or partition in the minute before)`,
          `final state reached ${liveness[liveness.length >> 1] ?? "-"} ms (median), ${liveness.at(-1) ?? "-"} ms (max) after healed, restarted and traffic stopped (requests and jobs last up to 40 s)`,
          "retirements that a fact elsewhere in the cluster would have prevented, by why the retiring member could not know it:",
          ...[...price].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${n}  ${k}`),
          `known gaps: ${totals.holdsForgotten} retirement(s) under a job whose hold a restart forgot; ${totals.deployRaces} call(s) of a new dependent to a reference that retired while it was being deployed; ${totals.guardLeaks} copy(ies) kept as never wanted on a member that missed the alias; ${totals.wantedNowhere} wanted hash(es) running nowhere; ${totals.keepLast} hash(es) kept by keep-last on some members only; ${totals.stuckSuspects} run(s) ending with a member still suspected (gossip)`,
          ...(splits.length > 0
            ? [
                `${splits.length} run(s) ended split in two for good (a known gap of cluster.ts, not asserted here):`,
                ...splits.map((x) => `  ${x}`),
              ]
            : []),
        ].join("\n"),
      );
      expect(failures).toEqual([]);
    },
    COUNT * 2000 + 30_000,
  );
});

const wrapped =
  (bend: (input: PlannerInput) => PlannerInput, config: Partial<PlannerConfig> = {}) =>
  (quietMs: number): PlannerLike => {
    const p = new RetirementPlanner({ quietMs, ...config });
    return {
      step: (input) => p.step(bend(input)),
      remember: (names) => p.remember(names),
      knownMembers: () => p.knownMembers(),
    };
  };
const mapReports = (input: PlannerInput, f: (m: MemberView, i: number) => MemberView): PlannerInput => ({
  ...input,
  members: input.members.map(f),
});

describe.skipIf(ONE !== undefined || SOAK !== undefined)("the properties catch planted bugs", () => {
  const plants: [string, RunOptions["plant"], string[]][] = [
    [
      "a planner that ignores suspect members",
      {
        newPlanner: wrapped((i) =>
          mapReports(i, (m) => (m.status === "suspect" ? { ...m, status: "dead" as const } : m)),
        ),
      },
      ["view.busy", "view.dependent"],
    ],
    [
      "a planner that forgets members it sees dead (its majority is of the members it still sees)",
      {
        newPlanner: wrapped(
          (i) => mapReports(i, (m) => (m.status === "dead" ? { ...m, status: "left" as const } : m)),
          { leftGraceMs: 0 },
        ),
      },
      ["view.majority"],
    ],
    [
      "a planner blind to load on other members",
      {
        newPlanner: wrapped((i) =>
          mapReports(i, (m, k) =>
            k === 0 ? m : { ...m, hashes: m.hashes.map((h) => ({ ...h, inFlight: 0, holds: 0 })) },
          ),
        ),
      },
      ["view.busy"],
    ],
    [
      "a planner blind to references",
      {
        newPlanner: wrapped((i) =>
          mapReports(i, (m) => ({ ...m, hashes: m.hashes.map((h) => ({ ...h, refs: [] })) })),
        ),
      },
      ["view.dependent", "view.wanted"],
    ],
    [
      "a planner blind to pins",
      { newPlanner: wrapped((i) => ({ ...i, roots: i.roots.filter((r) => r.reason !== "pinned") })) },
      ["view.wanted"],
    ],
    [
      "an agent whose cluster view leaves out suspect members (only the ground truth can tell)",
      { view: (v) => v.filter((m) => m.status !== "suspect") },
      ["truth"],
    ],
  ];
  test.each(plants)(
    "%s",
    (_, plant, expected) => {
      let caught: string | undefined;
      for (let seed = 1; seed <= 150 && caught === undefined; seed++) {
        const v = runSeed({ seed, plant }).violations.find((x) => expected.includes(x.property));
        if (v) caught = `seed ${seed}: ${v.property}: ${v.detail}`;
      }
      expect(caught).toBeDefined();
    },
    60_000,
  );
});

describe.skipIf(ONE !== undefined || SOAK !== undefined)("known gaps (these fail until fixed)", () => {
  test.failing("a job's hold outlives an agent restart (holds live in the agent's memory: with a quiet period shorter than the job's renewal interval its hash retires under it)", () => {
    const found: string[] = [];
    for (let seed = 1; seed <= 300 && found.length === 0; seed++) {
      const r = runSeed({ seed, setup: { quietMs: 0 } });
      for (const v of r.violations.filter((x) => x.property === HOLD_LOST))
        found.push(`seed ${seed} (quiet 0): ${v.member} retired ${v.hash.slice(0, 6)}: ${v.detail}`);
    }
    expect(found).toEqual([]);
  }, 60_000);

  test.failing("members that all restarted during a partition find the other side after the heal (cluster.ts joins its seeds again only while it knows no other member)", () => {
    const w = new World({
      seed: 7,
      size: 4,
      loss: 0,
      delay: [1, 5],
      policy: { kind: "retire" },
      quietMs: 10_000,
      newPlanner: () => new RetirementPlanner({ quietMs: 10_000 }),
    });
    w.advance(10_000);
    w.sim.partition([
      [0, 1],
      [2, 3],
    ]);
    w.advance(5000);
    for (const a of w.agents) a.crash();
    w.advance(1000);
    for (const a of w.agents) a.restart(); // each side's fresh gossip view: only its own side
    w.advance(10_000);
    w.sim.heal();
    w.advance(300_000);
    const unseen = w.agents.flatMap((a) =>
      w.agents.filter((b) => a.node.memberStatus(b.name) !== "alive").map((b) => `${a.name} -/-> ${b.name}`),
    );
    expect(unseen).toEqual([]);
  }, 30_000);
});
