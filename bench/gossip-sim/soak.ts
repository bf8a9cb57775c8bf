/**
 * Longer simulator runs than sim-figures.ts, over several seeds:
 *
 *   bun bench/gossip-sim/soak.ts loss <members> <minutes> <seeds>
 *       a converged cluster at 10% packet loss: suspicion events and false deaths (every member
 *       is up, so any death is false), e.g. `loss 100 60 10` (about a minute and a half)
 *   bun bench/gossip-sim/soak.ts heal <members> <seeds>
 *       every member seeds every other; a partition in two halves, every member restarted during
 *       it (so neither side remembers the other), then the heal: time until every member sees
 *       every member alive again
 *
 * One-way delay 1-10 ms, LAN defaults.
 */
import { bootCluster, median, membershipConverged } from "../../test/sim/gossip/scenarios.ts";
import { Simulation } from "../../test/sim/gossip/simulator.ts";

export const lossSoak = (size: number, minutes: number, seed: number) => {
  const sim = bootCluster({ seed, size, delay: [1, 10] });
  sim.runUntil(() => membershipConverged(sim), 120_000, 500);
  sim.run(30_000);
  let suspicions = 0;
  let deaths = 0;
  sim.listener = (_observer, ev) => {
    if (ev.type === "member-suspect") suspicions++;
    if (ev.type === "member-dead") deaths++;
  };
  sim.loss = 0.1;
  sim.run(minutes * 60_000);
  return { suspicions, deaths };
};

export const healAfterRestarts = (size: number, seed: number): number => {
  const sim = new Simulation({ seed, delay: [1, 10] });
  for (let i = 0; i < size; i++) sim.add([]);
  const everyone = sim.members.map((m) => m.address);
  for (const m of sim.members) m.node.join(everyone, sim.now);
  sim.runUntil(() => membershipConverged(sim), 60_000);
  const half = Math.ceil(size / 2);
  sim.partition([
    sim.members.slice(0, half).map((m) => m.index),
    sim.members.slice(half).map((m) => m.index),
  ]);
  sim.run(5_000);
  for (const m of sim.members) sim.crash(m.index);
  sim.run(1_000);
  for (const m of sim.members) sim.restart(m.index, everyone);
  sim.run(20_000);
  sim.heal();
  return sim.runUntil(() => membershipConverged(sim), 600_000, 250);
};

if (import.meta.main) {
  const [mode, ...args] = process.argv.slice(2);
  const n = args.map(Number);
  if (mode === "loss" && n.length === 3) {
    const [size, minutes, seeds] = n as [number, number, number];
    let suspicions = 0;
    let deaths = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const r = lossSoak(size, minutes, 500 + seed);
      suspicions += r.suspicions;
      deaths += r.deaths;
      console.log(`seed ${500 + seed}: ${r.suspicions} suspicion events, ${r.deaths} false deaths`);
    }
    console.log(
      `${size} members, ${seeds} x ${minutes} min at 10% loss: ${suspicions} suspicion events, ${deaths} false deaths`,
    );
  } else if (mode === "heal" && n.length === 2) {
    const [size, seeds] = n as [number, number];
    const took = Array.from({ length: seeds }, (_, i) => healAfterRestarts(size, i + 1));
    console.log(
      `${size} members, ${seeds} seeds: converged after the heal in median ${median(took)} ms, at most ${Math.max(...took)} ms (-1: not within 10 min)`,
    );
  } else {
    console.error("usage: sim-soak.ts loss <members> <minutes> <seeds> | heal <members> <seeds>");
    process.exit(2);
  }
}
