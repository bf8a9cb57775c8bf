/**
 * Failures: agent crashes or graceful stops (an upgrade: the agent leaves the cluster first, its
 * services keep running), sometimes of most of the cluster, with restarts seconds later, and
 * partitions (one host cut off, or a random split), some longer than it takes gossip to declare
 * the other side dead and reap it. Packet loss and delay are the simulator's, fixed per run.
 */
import { randomBetween, randomFloat, randomInt } from "../../../src/lib/prng.ts";
import type { World } from "./world.ts";

export class Chaos {
  on = true;
  /** agent crashes and graceful stops */
  crashes = 0;
  /** ... of which crashes (kill -9: no goodbye, in-flight work and memory lost) */
  kills = 0;
  partitions = 0;
  private partitioned = false;

  constructor(private readonly w: World) {}

  start(meanGapMs: number): void {
    const next = () => {
      if (!this.on) return;
      this.strike();
      this.w.at(-Math.log(1 - randomFloat(this.w.rng)) * meanGapMs, next);
    };
    this.w.at(-Math.log(1 - randomFloat(this.w.rng)) * meanGapMs, next);
  }

  /** Chaos ends: the partition heals and every crashed agent restarts. */
  calm(): void {
    this.on = false;
    this.heal();
    for (const a of this.w.agents) if (!a.up) this.restart(a.index);
  }

  private strike(): void {
    const { rng, agents } = this.w;
    if (randomFloat(rng) < 0.5) {
      const up = this.w.upAgents();
      if (up.length === 0) return;
      const victim = up[randomInt(rng, up.length)] as (typeof up)[number];
      // a crash lasting longer than the quiet period now and then (its reports expire meanwhile)
      const downMs =
        randomFloat(rng) < 0.7 ? randomBetween(rng, 1000, 15_000) : randomBetween(rng, 15_000, 90_000);
      this.crash(victim.index, randomFloat(rng) < 0.4);
      const epoch = victim.epoch;
      this.w.at(downMs, () => {
        if (this.on && !victim.up && victim.epoch === epoch) this.restart(victim.index);
      });
      return;
    }
    if (this.partitioned) return;
    const n = agents.length;
    let group: number[];
    if (randomFloat(rng) < 0.4) {
      const alone = randomInt(rng, n);
      group = agents.map((_, i) => (i === alone ? 1 : 0));
    } else {
      group = agents.map(() => randomInt(rng, randomFloat(rng) < 0.8 ? 2 : 3));
    }
    if (new Set(group).size < 2) return; // everyone landed on one side
    const lastsMs =
      randomFloat(rng) < 0.6 ? randomBetween(rng, 2000, 20_000) : randomBetween(rng, 20_000, 120_000);
    const groups: number[][] = [];
    group.forEach((g, i) => {
      groups[g] ??= [];
      (groups[g] as number[]).push(i);
    });
    this.w.sim.partition(groups.filter((g) => g !== undefined));
    this.w.disruptions.partitioned(group, this.w.now);
    this.partitioned = true;
    this.partitions++;
    this.w.trace(`partition ${groups.map((g) => `[${g.join(",")}]`).join(" ")} for ${lastsMs} ms`);
    this.w.at(lastsMs, () => {
      if (this.on) this.heal();
    });
  }

  /** A crash (kill -9, OOM), or a graceful stop (an upgrade): the agent leaves the cluster first. */
  private crash(index: number, graceful: boolean): void {
    const agent = this.w.agents[index];
    if (!agent?.up) return;
    if (graceful) agent.stopGracefully();
    else agent.crash();
    this.crashes++;
    if (!graceful) this.kills++;
    this.w.disruptions.crashed(index, this.w.now);
    this.w.trace(`${graceful ? "stop (leave)" : "crash"} ${agent.name}`);
  }

  private restart(index: number): void {
    const agent = this.w.agents[index];
    if (!agent || agent.up) return;
    agent.restart();
    this.w.disruptions.restarted(index, this.w.now);
    this.w.trace(`restart ${agent.name}`);
  }

  private heal(): void {
    if (!this.partitioned) return;
    this.w.sim.heal();
    this.w.disruptions.healed(this.w.now);
    this.partitioned = false;
    this.w.trace("heal");
  }
}
