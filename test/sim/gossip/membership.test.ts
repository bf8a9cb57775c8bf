/**
 * Membership in the simulator: convergence at 10 / 100 / 1,000 members, crash detection, no
 * false deaths under loss, partitions healing, restarts. Every failure message carries the seed.
 */
import { describe, expect, test } from "bun:test";
import { suspicionTimeout } from "../../../src/agent/gossip/swim/scaling.ts";
import { bootCluster, countSeeing, median, membershipConverged, statesConverged } from "./scenarios.ts";
import { Simulation } from "./simulator.ts";

describe("convergence", () => {
  test("10 members: membership and app state converge", () => {
    const sim = bootCluster({ seed: 11, size: 10, hashesPerMember: 2, refsPerHash: 1 });
    const took = sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 60_000);
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
    sim.check(() => expect(took).toBeLessThan(10_000));
  });

  test("100 members: membership and app state converge (10 runs: each within 20 s, the median within 10 s)", () => {
    // Over 100 seeds the median is 5 to 6 s, and one run in five or so takes 10 to 17 s: one
    // member missed every gossip of another's alive and waits for a push-pull with someone who
    // knows it. One seed alone says little about the bound.
    const took: number[] = [];
    for (let seed = 12; seed < 22; seed++) {
      const sim = bootCluster({ seed, size: 100, hashesPerMember: 2, refsPerHash: 1 });
      const ms = sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 60_000);
      sim.check(() => expect(ms).toBeGreaterThanOrEqual(0));
      sim.check(() => expect(ms).toBeLessThan(20_000));
      took.push(ms);
    }
    expect(median(took)).toBeLessThan(10_000);
  });

  test("1,000 members: membership and app state converge", () => {
    const sim = bootCluster({ seed: 13, size: 1000, joinSpacingMs: 20, hashesPerMember: 1 });
    const took = sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 60_000, 1000);
    console.log(`1,000 members: converged ${took} ms after the last join (simulated)`);
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
    sim.check(() => expect(took).toBeLessThan(30_000));
    const stats = sim.members[0]?.node.stats();
    sim.check(() => expect(stats?.decodeErrors).toBe(0));
  }, 90_000);

  test("the same seed replays the same run", () => {
    const a = bootCluster({ seed: 99, size: 20, loss: 0.05, delay: [1, 30] });
    const b = bootCluster({ seed: 99, size: 20, loss: 0.05, delay: [1, 30] });
    a.run(20_000);
    b.run(20_000);
    expect(a.eventsProcessed).toBe(b.eventsProcessed);
    expect(a.members.map((m) => m.node.members())).toEqual(b.members.map((m) => m.node.members()));
  });
});

describe("failure detection", () => {
  test("a crashed member is declared dead by everyone within the suspicion bound", () => {
    const size = 50;
    const sim = bootCluster({ seed: 21, size, delay: [1, 10] });
    sim.runUntil(() => membershipConverged(sim), 30_000);
    sim.crash(7);
    const crashedAt = sim.now;
    const took = sim.runUntil(() => countSeeing(sim, "node-7", "dead") === size - 1, 120_000);
    // Bound: a probe round to notice (the member is probed within n probe intervals at worst,
    // about 1 on average), the Lifeguard maximum suspicion time, and dissemination.
    const max = 6 * suspicionTimeout(4, size, 1000);
    console.log(`50 members: crash -> dead everywhere in ${took} ms (bound ${max + 15_000} ms)`);
    sim.check(() => expect(took).toBeGreaterThan(0));
    sim.check(() => expect(took).toBeLessThan(max + 15_000));
    sim.check(() => expect(sim.now - crashedAt).toBeGreaterThanOrEqual(suspicionTimeout(4, size, 1000)));
  });

  test("10% packet loss, 60 members, 10 simulated minutes: no false deaths", () => {
    const sim = bootCluster({ seed: 31, size: 60, delay: [1, 20] });
    sim.runUntil(() => membershipConverged(sim), 30_000);
    sim.loss = 0.1;
    let falseDeaths = 0;
    let suspicions = 0;
    sim.listener = (_obs, ev) => {
      if (ev.type === "member-dead") falseDeaths++;
      if (ev.type === "member-suspect") suspicions++;
    };
    sim.run(600_000);
    console.log(`60 members, 10% loss, 10 min: ${suspicions} suspicions, ${falseDeaths} false deaths`);
    sim.check(() => expect(falseDeaths).toBe(0));
    // suspicions are refuted: nobody is seen dead, and all are seen alive again shortly
    sim.check(() => expect(sim.members.every((m) => m.node.countByStatus().dead === 0)).toBe(true));
    sim.check(() => expect(sim.runUntil(() => membershipConverged(sim), 30_000)).toBeGreaterThanOrEqual(0));
  }, 60_000);

  test("a graceful leave is seen as left, not dead", () => {
    const sim = bootCluster({ seed: 41, size: 20 });
    sim.runUntil(() => membershipConverged(sim), 30_000);
    sim.members[3]?.node.leave(sim.now);
    sim.run(1000);
    sim.crash(3);
    const took = sim.runUntil(() => countSeeing(sim, "node-3", "left") === 19, 10_000);
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
  });
});

describe("partitions and restarts", () => {
  test("a partition long enough to reap the other side heals and converges", () => {
    const sim = bootCluster({ seed: 51, size: 30, hashesPerMember: 2 });
    sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 30_000);
    const left = Array.from({ length: 15 }, (_, i) => i);
    const right = Array.from({ length: 15 }, (_, i) => i + 15);
    sim.partition([left, right]);
    sim.run(120_000);
    // each side has declared the other dead and reaped it
    sim.check(() => expect(sim.members[0]?.node.memberStatus("node-20")).not.toBe("alive"));
    sim.check(() => expect(sim.members[20]?.node.memberStatus("node-0")).not.toBe("alive"));
    // state changes on both sides while apart
    sim.setLocalState(2, { hashes: [] });
    sim.setLocalState(22, { hashes: [] });
    sim.heal();
    const took = sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 600_000, 1000);
    console.log(`30 members, 120 s partition: healed and converged ${took} ms after the heal`);
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
  });

  test("a restarted member rejoins with a new incarnation and its old reports do not shadow the new", () => {
    const sim = bootCluster({ seed: 61, size: 20, hashesPerMember: 3 });
    sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 30_000);
    const oldHash = sim.members[5]?.node.memberState("node-5")?.hashes[0]?.hash as string;
    const oldInc = sim.members[0]?.node.members().find((m) => m.name === "node-5")?.incarnation as number;
    sim.crash(5);
    sim.run(3_000); // restarted before anyone declared it dead
    sim.restart(5, [sim.members[0]?.address as string]);
    const fresh = { hashes: [] };
    sim.setLocalState(5, fresh);
    const took = sim.runUntil(
      () =>
        sim.live().every((m) => m.node.whoRuns(oldHash).every((r) => r.member.name !== "node-5")) &&
        statesConverged(sim),
      30_000,
    );
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
    for (const m of sim.live()) {
      const info = m.node.members().find((x) => x.name === "node-5");
      sim.check(() => expect(info?.state).toBe("alive"));
      sim.check(() => expect(info?.incarnation).toBeGreaterThan(oldInc));
      sim.check(() => expect(m.node.memberState("node-5")).toEqual(fresh));
    }
  });

  test("a member restarted after being declared dead and reaped comes back", () => {
    const sim = bootCluster({ seed: 71, size: 15 });
    sim.runUntil(() => membershipConverged(sim), 30_000);
    sim.crash(4);
    sim.run(120_000);
    sim.check(() => expect(countSeeing(sim, "node-4", "alive")).toBe(0));
    sim.restart(4, [sim.randomLiveAddress(4) as string]);
    const took = sim.runUntil(() => membershipConverged(sim), 30_000);
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
  });
});

describe("simulator", () => {
  test("partitions drop packets both ways and streams fail across them", () => {
    const sim = new Simulation({ seed: 1 });
    const a = sim.add();
    const b = sim.add([a.address]);
    sim.partition([[0], [1]]);
    expect(sim.canReach(0, 1)).toBe(false);
    sim.run(100);
    expect(b.node.memberStatus("node-0")).toBeNull();
    sim.heal();
    b.node.join([a.address], sim.now);
    sim.run(100);
    expect(b.node.memberStatus("node-0")).toBe("alive");
  });
});
