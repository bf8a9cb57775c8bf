/**
 * Figures from the simulator, LAN defaults (memberlist's), one-way delay 1-10 ms:
 *
 * - crash -> every member marks it dead (median over several crashes, each member restarted and
 *   the cluster converged again before the next: 20 crashes at up to 10 members, else 3; a
 *   crashed member's host refuses connections),
 * - a member cut off (partition of one) -> every other member marks it dead (as many, each healed
 *   and every health score back to 0 before the next),
 * - a state update -> every member holds it (median over several updates),
 * - bytes sent per member per second at rest (sealed UDP payloads and stream frames),
 * - false deaths, suspicions and UDP bytes sent at 10% packet loss (60 min at up to 10 members,
 *   10 min at 100, 1 min at 1,000).
 *
 * Run: bun bench/gossip-sim/figures.ts [sizes...]   (default: 5 100 1000; about a minute)
 */

import {
  bootCluster,
  countSeeing,
  median,
  membershipConverged,
  statesConverged,
} from "../../test/sim/gossip/scenarios.ts";
import type { Simulation } from "../../test/sim/gossip/simulator.ts";
import { fakeState } from "../../test/support/gossip/fixtures.ts";

interface Figures {
  size: number;
  convergeMs: number;
  crashToAllDeadMs: number[];
  cutToAllDeadMs: number[];
  smallUpdateMs: number[];
  largeUpdateMs: number[];
  restUdpBps: number;
  restStreamBps: number;
  lossMinutes: number;
  /** UDP bytes per member per second during the loss run: the churn of suspicions and refutations. */
  lossUdpBps: number;
  lossSuspicions: number;
  lossFalseDeaths: number;
  wallMs: number;
  phases: string;
}

const sentBytes = (sim: Simulation): { udp: number; stream: number } =>
  sim.members.reduce((a, m) => ({ udp: a.udp + m.udpBytesSent, stream: a.stream + m.streamBytesSent }), {
    udp: 0,
    stream: 0,
  });

export interface MeasureOptions {
  /** Crashes measured (default 20 up to 10 members, else 3). */
  crashes?: number;
  /** Minutes at 10% loss (default 60 up to 10 members, 10 up to 999, else 1). */
  lossMinutes?: number;
}

export const measure = (size: number, seed: number, options: MeasureOptions = {}): Figures => {
  const wall = performance.now();
  const phases: string[] = [];
  let mark = wall;
  const phase = (name: string) => {
    const t = performance.now();
    phases.push(`${name} ${((t - mark) / 1000).toFixed(1)} s`);
    mark = t;
  };
  // Every member starts with a one-hash state. (With two hashes and a ref each, ~200-byte alives,
  // a 1,000-member mass join is gossip-bandwidth bound: ~58 s to converge instead of ~11 s.)
  const sim = bootCluster({ seed, size, delay: [1, 10], hashesPerMember: 1 });
  const convergeMs = sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 300_000, 1000);
  // let the join traffic drain before measuring anything "at rest"
  sim.run(60_000);
  phase("boot");

  const rest0 = sentBytes(sim);
  const restMs = 180_000; // one full push-pull period at 1,000 members (30 s scaled by 6)
  sim.run(restMs);
  const rest1 = sentBytes(sim);
  const perMemberSecond = (b: number) => b / size / (restMs / 1000);
  phase("rest");

  // state updates: small (rides in the owner's alive) and large (announced, then fetched)
  const smallUpdateMs: number[] = [];
  const largeUpdateMs: number[] = [];
  for (let k = 0; k < 3; k++) {
    const who = (10 + k * 7) % size;
    sim.setLocalState(who, fakeState(who * 1000, 2, { refs: 1, salt: 100 + k }));
    smallUpdateMs.push(sim.runUntil(() => statesConverged(sim), 60_000, 25));
    sim.setLocalState(who, fakeState(who * 1000, 40, { refs: 2, salt: 200 + k }));
    largeUpdateMs.push(sim.runUntil(() => statesConverged(sim), 60_000, 25));
    sim.run(5_000);
  }

  phase("updates");
  // crashes, one at a time, each waited out; the member then restarts and the cluster converges
  const crashToAllDeadMs: number[] = [];
  const crashes = options.crashes ?? (size <= 10 ? 20 : 3);
  for (let k = 0; k < crashes; k++) {
    const victim = (3 + k * 11) % size;
    const name = sim.members[victim]?.name as string;
    sim.crash(victim);
    crashToAllDeadMs.push(
      sim.runUntil(() => countSeeing(sim, name, "dead") === sim.live().length, 300_000, 50),
    );
    sim.restart(victim, [sim.randomLiveAddress(victim) as string]);
    sim.runUntil(() => membershipConverged(sim), 120_000, 250);
    sim.run(3_000 + ((k * 733) % 2_000));
  }

  phase("crashes");
  // a member cut off (a partition of one): its host is up but unreachable, so nothing refuses a
  // connection. Each cut starts once every member's health score is back to 0: a member just
  // healed from a cut probes slowly for a while (Lifeguard), which is not what this measures.
  const cutToAllDeadMs: number[] = [];
  const healthy = () => sim.members.every((m) => m.node.healthScore === 0);
  for (let k = 0; k < crashes; k++) {
    const victim = (5 + k * 13) % size;
    const name = sim.members[victim]?.name as string;
    const others = sim.members.map((m) => m.index).filter((i) => i !== victim);
    sim.partition([others, [victim]]);
    cutToAllDeadMs.push(
      sim.runUntil(
        () => others.every((i) => sim.members[i]?.node.memberStatus(name) === "dead"),
        300_000,
        50,
      ),
    );
    sim.heal();
    sim.runUntil(() => membershipConverged(sim) && healthy(), 300_000, 250);
    sim.run(1_000 + ((k * 733) % 2_000));
  }
  phase("cuts");
  // 10% loss on a stable cluster: every member is up, so any death is a false one
  let lossSuspicions = 0;
  let lossFalseDeaths = 0;
  sim.listener = (_observer, ev) => {
    if (ev.type === "member-suspect") lossSuspicions++;
    if (ev.type === "member-dead") lossFalseDeaths++;
  };
  sim.loss = 0.1;
  const lossMinutes = options.lossMinutes ?? (size <= 10 ? 60 : size >= 1000 ? 1 : 10);
  const loss0 = sentBytes(sim);
  sim.run(lossMinutes * 60_000);
  const lossUdpBps = (sentBytes(sim).udp - loss0.udp) / size / (lossMinutes * 60);
  sim.listener = null;
  sim.loss = 0;
  phase("loss");

  return {
    size,
    convergeMs,
    crashToAllDeadMs,
    cutToAllDeadMs,
    smallUpdateMs,
    largeUpdateMs,
    restUdpBps: perMemberSecond(rest1.udp - rest0.udp),
    restStreamBps: perMemberSecond(rest1.stream - rest0.stream),
    lossMinutes,
    lossUdpBps,
    lossSuspicions,
    lossFalseDeaths,
    wallMs: performance.now() - wall,
    phases: phases.join(", "),
  };
};

const print = (f: Figures): void => {
  const ms = (xs: number[]) =>
    xs.length > 5
      ? `median ${median(xs)} ms (${Math.min(...xs)}-${Math.max(...xs)}, n=${xs.length})`
      : `median ${median(xs)} ms (${xs.join(", ")})`;
  console.log(`--- ${f.size} members (simulated; wall ${(f.wallMs / 1000).toFixed(1)} s: ${f.phases})`);
  console.log(`  all start 20 ms apart -> converged:       ${f.convergeMs} ms after the last join`);
  console.log(`  crash -> dead at every member:            ${ms(f.crashToAllDeadMs)}`);
  console.log(`  cut off -> dead at every other member:    ${ms(f.cutToAllDeadMs)}`);
  console.log(`  small state update -> every member:       ${ms(f.smallUpdateMs)}`);
  console.log(`  ~3 KB state update -> every member:       ${ms(f.largeUpdateMs)}`);
  console.log(
    `  sent per member at rest:                  ${f.restUdpBps.toFixed(0)} B/s UDP + ${f.restStreamBps.toFixed(0)} B/s push-pull`,
  );
  console.log(
    `  10% loss for ${`${f.lossMinutes} min:`.padEnd(27)}${f.lossSuspicions} suspicion events, ${f.lossFalseDeaths} false deaths, ${f.lossUdpBps.toFixed(0)} B/s UDP sent per member`,
  );
};

if (import.meta.main) {
  const sizes = process.argv.slice(2).map(Number);
  for (const size of sizes.length > 0 ? sizes : [5, 100, 1000]) print(measure(size, 2024 + size));
}
