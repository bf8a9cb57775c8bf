/**
 * Top-down retirement over many random schedules in the gossip simulator (see properties.ts for
 * the properties exactly as asserted). Every failure names its seed and the command replaying it.
 *
 *   HASHD_RETIRE_SIM_SEEDS=1000 HASHD_RETIRE_SIM_FIRST=5000   more or other seeds
 *   HASHD_RETIRE_SIM_SOAK=2000                                 a soak: that many seeds of 5 min of chaos
 *   HASHD_RETIRE_SIM_SEED=123                                  one seed, with its trace
 */
import { describe, expect, test } from "bun:test";
import type { Planner } from "../../../src/agent/retirement/plan.ts";
import type { MemberView, PlannerConfig, PlannerInput } from "../../../src/agent/retirement/planner.ts";
import { RetirementPlanner } from "../../../src/agent/retirement/planner.ts";
import { fakeHash } from "../../support/gossip/fixtures.ts";
import { Checker, HOLD_LOST } from "./properties.ts";
import { FRESH_MS, failuresOf, HEAL_MS, type RunOptions, runSeed, SLOW_MS } from "./run.ts";
import { Workload } from "./workload.ts";
import { World } from "./world.ts";

const env = (name: string): number | undefined =>
  process.env[name] === undefined ? undefined : Number(process.env[name]);
const ONE = env("HASHD_RETIRE_SIM_SEED");
const SOAK = env("HASHD_RETIRE_SIM_SOAK");
const FIRST = env("HASHD_RETIRE_SIM_FIRST") ?? 1;
const COUNT = ONE !== undefined ? 1 : (SOAK ?? env("HASHD_RETIRE_SIM_SEEDS") ?? 200);
const CHAOS_MS = SOAK !== undefined ? 300_000 : undefined;

describe("top-down retirement in the gossip simulator", () => {
  test(
    `safety at every retirement and liveness once healed, over ${COUNT} random schedule(s) from seed ${ONE ?? FIRST}`,
    () => {
      const started = performance.now();
      const failures: string[] = [];
      const price = new Map<string, number>();
      const aliasFailures = new Map<string, number>();
      const liveness: number[] = [];
      const totals = {
        retirements: 0,
        requests: 0,
        aliasFailuresCalm: 0,
        aliasFailuresRetired: 0,
        holdsRestored: 0,
        stuckSuspects: 0,
        keptUnseenAlias: 0,
      };
      for (let seed = ONE ?? FIRST; seed < (ONE ?? FIRST) + COUNT; seed++) {
        const trace = ONE !== undefined ? (line: string) => console.log(line) : undefined;
        const r = runSeed({ seed, chaosMs: CHAOS_MS, trace });
        failures.push(...failuresOf(r, CHAOS_MS).map((f) => `${f.kind}: ${f.text}`));
        for (const e of r.excused) price.set(e.category, (price.get(e.category) ?? 0) + 1);
        if (r.livenessMs !== null) liveness.push(r.livenessMs);
        totals.retirements += r.retirements;
        totals.requests += r.stats.requests;
        for (const [why, n] of Object.entries(r.stats.aliasFailures))
          aliasFailures.set(why, (aliasFailures.get(why) ?? 0) + (n ?? 0));
        totals.aliasFailuresCalm += r.stats.aliasFailuresCalm;
        totals.aliasFailuresRetired += r.stats.aliasFailuresRetired;
        totals.holdsRestored += r.stats.holdsRestored;
        totals.keptUnseenAlias += r.keptUnseenAlias.length;
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
          `${totals.holdsRestored} renewal(s) of a job's hold accepted by a restarted agent`,
          `known gap: ${totals.stuckSuspects} run(s) ending with a member still suspected (gossip)`,
          `known gap: ${totals.keptUnseenAlias} copies kept as never aliased, though alias writes named their hash: made on members that do not run it, and lost to a later write before reaching one that does`,
        ].join("\n"),
      );
      expect(failures).toEqual([]);
    },
    COUNT * 2000 + 30_000,
  );
});

const wrapped =
  (bend: (input: PlannerInput) => PlannerInput, config: Partial<PlannerConfig> = {}) =>
  (quietMs: number): Planner => {
    const p = new RetirementPlanner({ quietMs, ...config });
    return {
      step: (input) => p.step(bend(input)),
      remember: (names) => p.remember(names),
      knownMembers: () => p.knownMembers(),
    };
  };
const blindToPins = wrapped((i) => ({ ...i, roots: i.roots.filter((r) => r.reason !== "pinned") }));
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
      "a planner blind to pins, behind a retirer that trusts it (does not read the alias table again)",
      { newPlanner: blindToPins, noRecheck: true },
      ["view.wanted"],
    ],
    [
      "a planner blind to sticky use, behind a retirer that trusts it",
      {
        newPlanner: wrapped((i) => ({ ...i, roots: i.roots.filter((r) => !r.reason.startsWith("sticky")) })),
        noRecheck: true,
      },
      ["view.sticky"],
    ],
    [
      "a planner blind to weighted aliases and rollout baselines, behind a retirer that trusts it",
      {
        newPlanner: wrapped((i) => ({
          ...i,
          roots: i.roots.filter((r) => !/\(\d+%\)$/.test(r.reason) && !r.reason.startsWith("baseline")),
        })),
        noRecheck: true,
      },
      ["view.alias", "view.wanted"],
    ],
  ];
  test.each(plants)(
    "%s",
    (_, plant, expected) => {
      let caught: string | undefined;
      for (let seed = 1; seed <= 300 && caught === undefined; seed++) {
        const v = runSeed({ seed, plant }).violations.find((x) => expected.includes(x.property));
        if (v) caught = `seed ${seed}: ${v.property}: ${v.detail}`;
      }
      expect(caught).toBeDefined();
    },
    60_000,
  );

  test("a planner blind to pins is harmless behind the retirer, which reads the alias table again before it stops", () => {
    let seed = 1;
    const wrong = (r: ReturnType<typeof runSeed>) =>
      r.violations.filter((v) => v.property === "view.wanted" || v.detail.includes("reaches it"));
    while (
      seed <= 150 &&
      wrong(runSeed({ seed, plant: { newPlanner: blindToPins, noRecheck: true } })).length === 0
    )
      seed++;
    expect(seed).toBeLessThanOrEqual(150); // a schedule where the bug retires a pinned hash ...
    expect(wrong(runSeed({ seed, plant: { newPlanner: blindToPins } }))).toEqual([]); // ... and where it does not
  }, 60_000);

  test("an agent whose cluster view leaves out suspect members (only the ground truth can tell)", () => {
    // Scripted: random schedules rarely suspect a member without a crash or partition that
    // excuses what it knew. Host-4 holds BE1 for a minute; then it is cut off, and while the
    // others only suspect it, its hold still counts: the planted view drops it.
    const run = (view?: (v: MemberView[]) => MemberView[]) => {
      const w = new World({
        seed: 3,
        size: 5,
        loss: 0,
        delay: [1, 5],
        policy: { kind: "retire" },
        quietMs: 0,
        newPlanner: () => new RetirementPlanner({ quietMs: 0 }),
        mapView: view,
      });
      const checker = new Checker(w, new Workload(w), {
        freshMs: FRESH_MS,
        healMs: HEAL_MS,
        slowMs: SLOW_MS,
      });
      w.onEffect = (agent, action, effect, input) => checker.onEffect(agent, action, effect, input);
      const [be1, fe1, be2, fe2] = [1, 2, 3, 4].map((n) => fakeHash(800_000 + n)) as [
        string,
        string,
        string,
        string,
      ];
      const refs: Record<string, string[]> = { [fe1]: [be1], [fe2]: [be2] };
      for (const a of w.agents) for (const h of [be1, fe1, be2, fe2]) a.activate(h, refs[h] ?? [], 100, 100);
      w.advance(2000);
      w.agents[0]?.aliases.set({ prod: fe1 });
      w.advance(2000);
      w.agents[4]?.acquireHold(be1, 600_000);
      w.agents[0]?.aliases.set({ prod: fe2 });
      w.advance(60_000); // fe1 retires everywhere; be1 drains, kept by host-4's hold
      w.sim.partition([[0, 1, 2, 3], [4]]);
      w.disruptions.partitioned([0, 0, 0, 0, 1], w.now);
      w.advance(20_000);
      return checker.violations.filter((v) => v.hash === be1);
    };
    const planted = run((v) => v.filter((m) => m.status !== "suspect"));
    expect(planted.map((v) => v.property)).toContain("truth");
    expect(planted.find((v) => v.property === "truth")?.detail).toContain(
      "hold(s) on host-4 (suspect in its view)",
    );
    expect(run()).toEqual([]); // the real view keeps be1 until host-4 is declared dead (then excused)
  }, 30_000);
});

describe.skipIf(ONE !== undefined || SOAK !== undefined)("gaps of issue 5, closed", () => {
  test("a job's hold outlives an agent restart (holds are journalled and restored, as if renewed at the start: with no quiet period, nothing retires under a job)", () => {
    const found: string[] = [];
    let restored = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const r = runSeed({ seed, setup: { quietMs: 0 } });
      for (const v of r.violations.filter((x) => x.property === HOLD_LOST))
        found.push(`seed ${seed} (quiet 0): ${v.member} retired ${v.hash.slice(0, 6)}: ${v.detail}`);
      restored += r.stats.holdsRestored;
    }
    expect(found).toEqual([]);
    expect(restored).toBeGreaterThan(0); // restarts did happen under running jobs
  }, 60_000);
});

describe.skipIf(ONE !== undefined || SOAK !== undefined)("membership after a partition", () => {
  test("members that all restarted during a partition find the other side after the heal (reconnect: seeds that are not alive members are tried every 30 s)", () => {
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
    for (const a of w.agents) a.restart();
    w.advance(10_000);
    const unseen = () =>
      w.agents.flatMap((a) =>
        w.agents
          .filter((b) => a.node.memberStatus(b.name) !== "alive")
          .map((b) => `${a.name} -/-> ${b.name}`),
      );
    // each side's fresh gossip view holds only its own side, alive: nobody is alone
    expect(unseen()).toEqual([
      "host-0 -/-> host-2",
      "host-0 -/-> host-3",
      "host-1 -/-> host-2",
      "host-1 -/-> host-3",
      "host-2 -/-> host-0",
      "host-2 -/-> host-1",
      "host-3 -/-> host-0",
      "host-3 -/-> host-1",
    ]);
    expect(w.agents[0]?.node.memberStatus("host-2")).toBeNull();
    w.sim.heal();
    const healedAt = w.now;
    while (unseen().length > 0 && w.now - healedAt < 120_000) w.advance(1000);
    // every member joins a seed that is not an alive member every 15 to 45 s
    expect(unseen()).toEqual([]);
    expect(w.now - healedAt).toBeLessThanOrEqual(60_000);
  }, 30_000);
});
