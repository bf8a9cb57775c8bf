/**
 * App state and aliases in the simulator: large states by announce-and-fetch, replays, restarts
 * with a clock that went back, alias convergence under loss and reordering.
 */

import { describe, expect, test } from "bun:test";
import { decodePacket } from "../../../src/agent/gossip/wire/codec.ts";
import { T } from "../../../src/agent/gossip/wire/messages.ts";
import type { AliasRecord } from "../../../src/model/alias-record.ts";
import { compareWrites } from "../../../src/model/hlc.ts";
import { fakeHash, fakeState } from "../../support/gossip/fixtures.ts";
import { bootCluster, membershipConverged, statesConverged } from "./scenarios.ts";

describe("app state", () => {
  test("large states (announced by version, fetched over streams) converge at 100 members", () => {
    const sim = bootCluster({ seed: 81, size: 100, hashesPerMember: 30, refsPerHash: 2 });
    const took = sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 120_000);
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
    // an update of one member reaches everyone
    sim.setLocalState(42, fakeState(42_000, 31, { refs: 2, salt: 7 }));
    const start = sim.now;
    const spread = sim.runUntil(() => statesConverged(sim), 30_000, 50);
    console.log(
      `100 members, ~3 KB states: converged ${took} ms after the last join; one update everywhere in ${sim.now - start} ms`,
    );
    sim.check(() => expect(spread).toBeGreaterThanOrEqual(0));
    const h = fakeHash(42_000 + 30);
    sim.check(() =>
      expect(sim.members.every((m) => m.node.whoRuns(h)[0]?.report.inFlight === 7 + 30)).toBe(true),
    );
    sim.check(() => expect(sim.members.reduce((a, m) => a + m.node.stats().decodeErrors, 0)).toBe(0));
  });

  test("a replayed stale state update never overrides a newer one", () => {
    const sim = bootCluster({ seed: 91, size: 20, hashesPerMember: 1 });
    sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 30_000);
    // capture a packet that carries node-3's state at version seq 2
    let captured: Uint8Array | null = null;
    sim.packetTap = (_from, _to, packet) => {
      if (captured !== null) return;
      const d = decodePacket(packet, 2000);
      if (!d.ok) return;
      const hit = d.value.some(
        (m) =>
          (m.t === T.alive || m.t === T.state) &&
          m.name === "node-3" &&
          (m.t === T.alive ? m.state : m)?.version.seq === 2,
      );
      if (hit) captured = packet;
    };
    sim.setLocalState(3, fakeState(3000, 1, { salt: 2 }));
    sim.run(5_000);
    sim.packetTap = null;
    sim.check(() => expect(captured).not.toBeNull());
    sim.setLocalState(3, fakeState(3000, 1, { salt: 3 }));
    sim.runUntil(() => statesConverged(sim), 30_000);
    const before = sim.members.reduce((a, m) => a + m.node.stats().staleStates, 0);
    for (const m of sim.members)
      sim.inject(m.index, sim.members[3]?.address as string, captured as unknown as Uint8Array);
    sim.run(5_000);
    const h = fakeHash(3000);
    for (const m of sim.members) {
      sim.check(() => expect(m.node.stateVersionOf("node-3")?.seq).toBe(3));
      sim.check(() => expect(m.node.whoRuns(h)[0]?.report.inFlight).toBe(3));
    }
    const after = sim.members.reduce((a, m) => a + m.node.stats().staleStates, 0);
    sim.check(() => expect(after).toBeGreaterThan(before));
  });

  test("a member restarted with a boot id below its old one still outranks its old reports", () => {
    const sim = bootCluster({ seed: 101, size: 15, hashesPerMember: 2 });
    sim.runUntil(() => membershipConverged(sim) && statesConverged(sim), 30_000);
    const oldBoot = sim.members[6]?.boot as number;
    sim.crash(6);
    sim.run(2_000);
    sim.restart(6, [sim.members[0]?.address as string], oldBoot - 60_000); // clock stepped back a minute
    const fresh = fakeState(99_000, 1);
    sim.setLocalState(6, fresh);
    const took = sim.runUntil(
      () =>
        membershipConverged(sim) && sim.members.every((m) => m.node.whoRuns(fakeHash(99_000)).length === 1),
      60_000,
    );
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
    sim.check(() => expect(sim.members[6]?.node.stateVersionOf("node-6")?.boot).toBeGreaterThan(oldBoot));
    for (const m of sim.members) sim.check(() => expect(m.node.memberState("node-6")).toEqual(fresh));
  });
});

describe("aliases", () => {
  test("converge to the last writer by HLC under loss and reordering", () => {
    const sim = bootCluster({ seed: 111, size: 25, loss: 0.05, delay: [1, 80] });
    sim.runUntil(() => membershipConverged(sim), 60_000);
    const writes: AliasRecord[] = [];
    // concurrent writers, some within the same millisecond, one alias removed and re-set
    for (let round = 0; round < 6; round++) {
      for (const i of [2, 9, 17]) {
        const m = sim.members[i];
        const hash = round === 3 && i === 9 ? null : fakeHash(round * 100 + i);
        if (m !== undefined) writes.push(m.node.setAlias("prod.example", hash, sim.now));
      }
      const batch = sim.members[5]?.node.setAliases(
        [
          { name: "api.example", hash: fakeHash(7000 + round) },
          { name: "web.example", hash: fakeHash(8000 + round) },
        ],
        sim.now,
      );
      if (batch !== undefined) writes.push(...batch);
      sim.run(30 + round * 7);
    }
    const winner = (name: string) =>
      writes.filter((w) => w.name === name).reduce((a, b) => (compareWrites(a, b) >= 0 ? a : b));
    const expected = ["api.example", "prod.example", "web.example"].map(winner);
    const agreed = () =>
      sim.members.every((m) => {
        const got = m.node.aliases().sort((a, b) => a.name.localeCompare(b.name));
        return JSON.stringify(got) === JSON.stringify(expected);
      });
    const took = sim.runUntil(agreed, 120_000);
    console.log(`25 members, 5% loss: aliases agreed ${took} ms after the last write`);
    sim.check(() => expect(took).toBeGreaterThanOrEqual(0));
  });
});
