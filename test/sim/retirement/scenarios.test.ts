/**
 * Scripted schedules in the simulated cluster for the races of issue 5 that random schedules hit
 * only now and then: a new dependent deployed while its dependency drains, and a rollback that
 * races the retirement of its target. No quiet period, so the retirer acts on its first chance.
 */
import { describe, expect, test } from "bun:test";
import { RetirementPlanner } from "../../../src/agent/retirement/planner.ts";
import { fakeHash } from "../../support/gossip/fixtures.ts";
import type { AgentModel } from "./agent-model.ts";
import { World } from "./world.ts";

const [BE1, FE1, BE2, FE2, FE3] = [1, 2, 3, 4, 5].map((n) => fakeHash(900_000 + n)) as [
  string,
  string,
  string,
  string,
  string,
];
/** FE3 is a new frontend built against the old backend BE1 (a preview, a hotfix of v1) */
const REFS: Record<string, string[]> = { [BE1]: [], [FE1]: [BE1], [BE2]: [], [FE2]: [BE2], [FE3]: [BE1] };

interface Retirement {
  member: string;
  hash: string;
  at: number;
}

function cluster(): { w: World; retirements: Retirement[] } {
  const w = new World({
    seed: 5,
    size: 3,
    loss: 0,
    delay: [1, 5],
    policy: { kind: "retire" },
    quietMs: 0,
    newPlanner: () => new RetirementPlanner({ quietMs: 0 }),
  });
  const retirements: Retirement[] = [];
  w.onEffect = (agent, action, effect) => {
    if (effect.kind === "transition" && effect.to === "retired")
      retirements.push({ member: agent.name, hash: action.hash, at: w.now });
  };
  return { w, retirements };
}

/** `hashd activate` of each hash in turn on every agent, as a deploy of a closure bottom first. */
function deploy(w: World, hashes: readonly string[], pipelineMs: number): void {
  for (const agent of w.agents) {
    hashes.forEach((hash, i) => {
      w.at(i * (pipelineMs + 10), () => agent.activate(hash, REFS[hash] ?? [], pipelineMs, 300));
    });
  }
}

/** Each agent's state of a hash, with ready and idle (scaled to zero) both "serving". */
const states = (w: World, hash: string): (string | undefined)[] =>
  w.agents.map((a) => {
    const state = a.deployments.get(hash)?.state;
    return state === "ready" || state === "idle" ? "serving" : state;
  });

/**
 * v1 (FE1 -> BE1) aliased as prod, then prod switched to v2: FE1 retires everywhere, BE1 drains
 * but a job's hold on host-0 keeps it. Returns the hold's release.
 */
function v1Draining(w: World): () => void {
  deploy(w, [BE1, FE1, BE2, FE2], 200);
  w.advance(3000);
  (w.agents[0] as AgentModel).aliases.set({ prod: FE1 });
  w.advance(3000);
  const job = (w.agents[0] as AgentModel).acquireHold(BE1, 600_000);
  (w.agents[1] as AgentModel).aliases.set({ prod: FE2 });
  w.advance(10_000);
  expect(states(w, FE1)).toEqual(["retired", "retired", "retired"]);
  expect(states(w, BE1)).toEqual(["draining", "draining", "draining"]);
  return () => (w.agents[0] as AgentModel).releaseHold(job);
}

describe("a new dependent of a draining hash, deployed with no quiet period", () => {
  test("activated bottom first: the draining dependency comes back and is kept until an alias wants it", () => {
    const { w, retirements } = cluster();
    const release = v1Draining(w);
    const from = w.now;
    release(); // nothing holds BE1 any more ...
    deploy(w, [BE1, FE3], 2000); // ... as the new dependent is deployed (its pipeline takes 2 s)
    w.advance(30_000);
    expect(retirements.filter((r) => r.hash === BE1 && r.at >= from)).toEqual([]);
    expect(states(w, FE3)).toEqual(["serving", "serving", "serving"]);
    expect(states(w, BE1)).toEqual(["serving", "serving", "serving"]);
    expect(w.agents.map((a) => a.deployments.get(BE1)?.reactivated)).toEqual([true, true, true]);

    // aliased, then dropped: FE3 and BE1 retire top-down as usual
    (w.agents[2] as AgentModel).aliases.set({ pr: FE3 });
    w.advance(5000);
    (w.agents[2] as AgentModel).aliases.remove("pr");
    w.advance(20_000);
    expect(states(w, FE3)).toEqual(["retired", "retired", "retired"]);
    expect(states(w, BE1)).toEqual(["retired", "retired", "retired"]);
    for (const a of w.agents) {
      const order = retirements.filter((r) => r.member === a.name && r.at >= from).map((r) => r.hash);
      expect(order).toEqual([FE3, BE1]);
    }
  }, 30_000);

  test("only the new dependent activated (as `hashd deploy` does): its activation under way keeps the dependency", () => {
    const { w, retirements } = cluster();
    const release = v1Draining(w);
    const from = w.now;
    release();
    deploy(w, [FE3], 2000); // references read after 1 s, row written after 2 s
    w.advance(30_000);
    expect(retirements.filter((r) => r.hash === BE1 && r.at >= from)).toEqual([]);
    expect(states(w, FE3)).toEqual(["serving", "serving", "serving"]);
    // unwanted, but a running dependent keeps it (top-down), draining
    expect(states(w, BE1)).toEqual(["draining", "draining", "draining"]);
  }, 30_000);
});

describe("a rollback that races the retirement of its target", () => {
  test("the members that retired it bring it back from their store; prod ends live everywhere", () => {
    const { w, retirements } = cluster();
    deploy(w, [BE1, FE1, BE2, FE2], 200);
    w.advance(3000);
    (w.agents[0] as AgentModel).aliases.set({ prod: FE1 });
    w.advance(3000);
    let rolledBack: string | undefined;
    w.onEffect = (agent, action, effect) => {
      if (effect.kind !== "transition" || effect.to !== "retired") return;
      retirements.push({ member: agent.name, hash: action.hash, at: w.now });
      if (action.hash !== FE1 || rolledBack !== undefined) return;
      // the first member retires FE1; another one, which still runs it, rolls prod back to it
      const other = w.agents.find((a) => a !== agent && a.isLive(FE1)) as AgentModel;
      w.at(0, () => {
        rolledBack = other.aliases.rollback("prod", (h) => other.isLive(h)).hash;
      });
    };
    (w.agents[1] as AgentModel).aliases.set({ prod: FE2 });
    w.advance(20_000);
    expect(rolledBack).toBe(FE1);
    const retiredFirst = retirements.filter((r) => r.hash === FE1);
    expect(retiredFirst.length).toBeGreaterThan(0);
    for (const a of w.agents) expect(a.aliases.resolve("prod")).toBe(FE1);
    expect(states(w, FE1)).toEqual(["serving", "serving", "serving"]);
    expect(states(w, BE1)).toEqual(["serving", "serving", "serving"]);
    // where it had retired, it is a new generation, activated by the agent (still wanted-once)
    for (const r of retiredFirst) {
      const d = (w.agentNamed(r.member) as AgentModel).deployments.get(FE1);
      expect(d?.generation).toBe(2);
      expect(d?.everWanted).toBe(true);
    }
  }, 30_000);
});
