/**
 * The simulated cluster: the gossip simulator's members, each with an agent model, on one
 * virtual clock. The agents' loops (publish every 250 ms, retirer every second, unit watch every
 * 2 s, as start-loops.ts; rejoining and reconnecting are the gossip core's) and the workload's jobs run
 * from one queue merged with the simulator's: a run is a pure function of its seed.
 */
import type { RetentionPolicy } from "../../../src/agent/aliases/alias-service.ts";
import type { Effect } from "../../../src/agent/retirement/effects.ts";
import type { PlanInput, Planner } from "../../../src/agent/retirement/plan.ts";
import type { Action, MemberView } from "../../../src/agent/retirement/planner.ts";
import { randomInt, Xoshiro128 } from "../../../src/lib/prng.ts";
import { EventHeap } from "../gossip/event-heap.ts";
import { Simulation } from "../gossip/simulator.ts";
import { AgentModel } from "./agent-model.ts";
import { Catalog } from "./catalog.ts";
import { Disruptions } from "./disruptions.ts";

export interface WorldOptions {
  seed: number;
  size: number;
  loss: number;
  delay: [number, number];
  policy: RetentionPolicy;
  /** the planner's quiet period (the agent's quietSec) */
  quietMs: number;
  newPlanner: () => Planner;
  mapView?: (view: MemberView[]) => MemberView[];
  noRecheck?: boolean;
  trace?: (line: string) => void;
}

interface Job {
  at: number;
  seq: number;
  fn: () => void;
}

const PUBLISH_MS = 250;
const RETIRE_MS = 1000;
const UNIT_WATCH_MS = 2000;

export class World {
  readonly sim: Simulation;
  readonly agents: AgentModel[] = [];
  /** the workload's and chaos's randomness (the network's is the simulator's own) */
  readonly rng: Xoshiro128;
  readonly catalog: Catalog;
  readonly disruptions: Disruptions;
  /** called just before an agent carries out an effect (the properties are checked there) */
  onEffect: (agent: AgentModel, action: Action, effect: Effect, input: PlanInput) => void = () => {};
  /** called after a winning alias write changed an agent's alias table (local or gossiped) */
  onAliasChange: (agent: AgentModel) => void = () => {};
  /** called after each retirer tick of an up agent */
  afterTick: (agent: AgentModel) => void = () => {};
  private readonly jobs = new EventHeap<Job>();
  private seq = 0;

  constructor(readonly options: WorldOptions) {
    this.sim = new Simulation({ seed: options.seed, loss: options.loss, delay: options.delay });
    this.rng = new Xoshiro128((options.seed ^ 0x5eed5eed) >>> 0);
    this.catalog = new Catalog(this.rng.fork(), options.seed % 100_000);
    this.disruptions = new Disruptions(options.size);
    for (let i = 0; i < options.size; i++) this.sim.add([], `host-${i}`);
    const addresses = this.sim.members.map((m) => m.address);
    for (let i = 0; i < options.size; i++) {
      const agent = new AgentModel(
        this.sim,
        i,
        {
          policy: options.policy,
          newPlanner: options.newPlanner,
          seeds: () => addresses.filter((_, j) => j !== i),
          idleStopMs: 15_000,
          mapView: options.mapView,
          noRecheck: options.noRecheck,
        },
        {
          schedule: (afterMs, fn) => this.at(afterMs, fn),
          beforeEffect: (a, action, effect, input) => this.onEffect(a, action, effect, input),
        },
      );
      this.agents.push(agent);
    }
    this.sim.listener = (observer, event) => {
      // start-cluster.ts: every winning alias write, local or gossiped, goes into the history
      const agent = this.agents[observer.index];
      if (event.type !== "alias-changed" || agent === undefined) return;
      agent.aliases.record(event.record);
      this.onAliasChange(agent);
    };
    for (const agent of this.agents) {
      agent.publish();
      agent.node.join(
        addresses.filter((_, j) => j !== agent.index),
        this.now,
      );
      this.every(PUBLISH_MS, () => agent.publish());
      this.every(RETIRE_MS, () => {
        if (agent.retirementTick() !== null) this.afterTick(agent);
      });
      this.every(UNIT_WATCH_MS, () => agent.watchUnits());
    }
  }

  get now(): number {
    return this.sim.now;
  }

  get size(): number {
    return this.agents.length;
  }

  agentNamed(name: string): AgentModel | undefined {
    return this.agents.find((a) => a.name === name);
  }

  upAgents(): AgentModel[] {
    return this.agents.filter((a) => a.up);
  }

  at(afterMs: number, fn: () => void): void {
    this.jobs.push({ at: this.now + Math.max(0, Math.round(afterMs)), seq: this.seq++, fn });
  }

  /** A loop with a random phase, as independent agents' timers are. */
  every(periodMs: number, fn: () => void): void {
    const tick = () => {
      fn();
      this.at(periodMs, tick);
    };
    this.at(1 + randomInt(this.rng, periodMs), tick);
  }

  advance(ms: number): void {
    const until = this.now + ms;
    while (this.jobs.peekTime() <= until) {
      const job = this.jobs.pop() as Job;
      this.sim.runUntilTime(job.at);
      job.fn();
    }
    this.sim.runUntilTime(until);
  }

  trace(line: string): void {
    this.options.trace?.(`${((this.now - START) / 1000).toFixed(3).padStart(9)} s  ${line}`);
  }
}

/** The simulator's default start (its epoch ms); traces print time since then. */
export const START = 1_700_000_000_000;
