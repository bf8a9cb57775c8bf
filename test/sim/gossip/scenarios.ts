/**
 * Building blocks for simulator tests and figures: boot a cluster, and the convergence
 * predicates (every live member sees every live member alive; every live member holds every
 * live member's current state version).
 */
import type { GossipConfig } from "../../../src/agent/gossip/config.ts";
import { fakeState } from "../../support/gossip/fixtures.ts";
import { type SimMember, Simulation } from "./simulator.ts";

export interface ClusterOptions {
  seed: number;
  size: number;
  /** Time between two members starting (each joins through a random running member). */
  joinSpacingMs?: number;
  loss?: number;
  delay?: [number, number];
  config?: Partial<GossipConfig>;
  /** Hashes each member reports (0: no state set). */
  hashesPerMember?: number;
  refsPerHash?: number;
}

export const bootCluster = (o: ClusterOptions): Simulation => {
  const sim = new Simulation({ seed: o.seed, loss: o.loss, delay: o.delay, config: o.config });
  const spacing = o.joinSpacingMs ?? 20;
  for (let i = 0; i < o.size; i++) {
    const seed = i === 0 ? [] : [sim.randomLiveAddress(i) as string];
    const hashes = o.hashesPerMember ?? 0;
    sim.add(
      seed,
      undefined,
      hashes > 0 ? fakeState(i * 1000, hashes, { refs: o.refsPerHash ?? 0 }) : undefined,
    );
    sim.run(spacing);
  }
  return sim;
};

/** Every live member sees every live member alive. */
export const membershipConverged = (sim: Simulation): boolean => {
  const live = sim.live();
  for (const observer of live) {
    if (observer.node.countByStatus().alive < live.length) return false;
  }
  for (const observer of live) {
    for (const m of live) if (observer.node.memberStatus(m.name) !== "alive") return false;
  }
  return true;
};

/** Every live member holds the current state version of every live member. */
export const statesConverged = (sim: Simulation): boolean => {
  const live = sim.live();
  const current = live.map((m) => m.node.stateVersionOf(m.name));
  for (const observer of live) {
    for (let i = 0; i < live.length; i++) {
      const want = current[i];
      const have = observer.node.stateVersionOf((live[i] as SimMember).name);
      if (want === null || want === undefined) continue;
      if (have === null || have.boot !== want.boot || have.seq !== want.seq) return false;
    }
  }
  return true;
};

/** How many live members see `name` in `status`. */
export const countSeeing = (sim: Simulation, name: string, status: string): number =>
  sim.live().filter((m) => m.node.memberStatus(name) === status).length;

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
