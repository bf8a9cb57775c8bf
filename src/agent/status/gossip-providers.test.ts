import { describe, expect, test } from "bun:test";
import { fakeMemberInfo } from "../../../test/support/gossip/fixtures.ts";
import { fakeHash } from "../../../test/support/status/fixtures.ts";
import type { MemberAppState } from "../../model/reports.ts";
import { StateStore } from "../state/store.ts";
import { aliasProviders, clusterProviders, LAST_KNOWN_MEMBERS } from "./gossip-providers.ts";
import { storeStatusSource } from "./source.ts";

const [A, B] = [fakeHash("a"), fakeHash("b")];

describe("clusterProviders and aliasProviders", () => {
  test("members, reports of live members other than itself, aliases with history", () => {
    const states: Record<string, MemberAppState> = {
      n1: { hashes: [{ hash: A, state: "ready", inFlight: 9, holds: 0, refs: [] }] },
      n2: { hashes: [{ hash: A, state: "ready", inFlight: 2, holds: 1, refs: [B] }] },
      n3: { hashes: [{ hash: A, state: "ready", inFlight: 5, holds: 0, refs: [] }] },
    };
    const cluster = {
      self: "n1",
      memberInfos: () => [
        fakeMemberInfo("n1", "alive"),
        fakeMemberInfo("n2", "suspect"),
        fakeMemberInfo("n3", "dead"),
      ],
      memberState: (name: string) => states[name] ?? null,
    };
    const aliases = {
      list: () => [{ name: "prod", hash: A }],
      history: (name: string, limit: number) =>
        name === "prod"
          ? [
              { hash: A, at: 10, by: "n1" },
              { hash: B, at: 5, by: "n2" },
            ].slice(0, limit)
          : [],
    };
    const p = { ...clusterProviders(cluster), ...aliasProviders(() => aliases) };
    expect(p.self).toBe("n1");
    // the dead member's report is kept, marked stale: shown, not counted
    expect([...p.reports()].map((r) => [r.member, r.stale ?? false])).toEqual([
      ["n2", false],
      ["n3", true],
    ]);
    const store = new StateStore(":memory:");
    const snap = storeStatusSource(store, (h) => `http://${h}.z/`, p).snapshot();
    expect(snap.members.map((m) => [m.name, m.state, m.self])).toEqual([
      ["n1", "alive", true],
      ["n2", "suspect", false],
      ["n3", "dead", false],
    ]);
    expect(snap.hashes).toMatchObject([{ hash: A, state: null, inFlight: 2, holds: 1, refs: [B] }]);
    expect(snap.hashes[0]?.hosts).toEqual([
      { member: "n2", state: "ready", inFlight: 2, holds: 1 },
      { member: "n3", state: "ready", inFlight: 5, holds: 0, stale: true },
    ]);
    expect(snap.aliases).toEqual([
      {
        name: "prod",
        hash: A,
        history: [
          { hash: A, at: 10, by: "n1" },
          { hash: B, at: 5, by: "n2" },
        ],
      },
    ]);
    expect(aliasProviders(() => aliases, 1).aliases()[0]?.history).toEqual([{ hash: A, at: 10, by: "n1" }]);
    expect(aliasProviders(() => undefined).aliases()).toEqual([]);
    store.close();
  });

  test("a member that dies keeps its last known report, even when gossip forgets its state; bounded", () => {
    const infos = new Map([
      ["n1", fakeMemberInfo("n1", "alive")],
      ["n2", fakeMemberInfo("n2", "alive")],
    ]);
    const states = new Map<string, MemberAppState>([
      [
        "n2",
        {
          hashes: [
            {
              hash: A,
              state: "ready",
              inFlight: 1,
              holds: 0,
              refs: [],
              service: "web",
              why: "wanted: alias prod",
            },
          ],
        },
      ],
    ]);
    const cluster = {
      self: "n1",
      memberInfos: () => [...infos.values()],
      memberState: (name: string) => states.get(name) ?? null,
    };
    const p = clusterProviders(cluster);
    expect([...p.reports()]).toMatchObject([{ member: "n2", hashes: [{ hash: A, service: "web" }] }]);
    infos.set("n2", fakeMemberInfo("n2", "dead"));
    states.delete("n2");
    expect([...p.reports()]).toMatchObject([{ member: "n2", stale: true, hashes: [{ hash: A }] }]);
    const store = new StateStore(":memory:");
    const snap = storeStatusSource(store, (h) => `http://${h}.z/`, p).snapshot();
    // named and explained by its report, shown, not counted
    expect(snap.hashes).toMatchObject([{ hash: A, name: "web", verdict: "wanted: alias prod", inFlight: 0 }]);
    store.close();
    // bounded: only the last LAST_KNOWN_MEMBERS members that went away are remembered
    for (let i = 0; i < LAST_KNOWN_MEMBERS + 5; i++) {
      infos.set(`m${i}`, fakeMemberInfo(`m${i}`, "alive"));
      states.set(`m${i}`, { hashes: [{ hash: B, state: "ready", inFlight: 0, holds: 0, refs: [] }] });
    }
    p.reports();
    for (let i = 0; i < LAST_KNOWN_MEMBERS + 5; i++) {
      infos.set(`m${i}`, fakeMemberInfo(`m${i}`, "dead"));
      states.delete(`m${i}`);
    }
    expect([...p.reports()].length).toBeLessThanOrEqual(LAST_KNOWN_MEMBERS);
  });

  test("aliases carry a weighted split and a rollout", () => {
    const rollout = {
      kind: "rollout" as const,
      from: A,
      to: B,
      steps: [5, 25, 100],
      step: 1,
      stepSince: 1,
      stepTimeMs: 60_000,
      intervalMs: 5000,
      limits: { maxErrorRate: 0.01, maxP99Ratio: 1.5, minRequests: 200 },
      status: "running" as const,
      note: "step 1 (25%)",
      startedAt: 1,
    };
    const aliases = {
      list: () => [
        {
          name: "prod",
          hash: A,
          split: [
            { hash: A, weight: 75 },
            { hash: B, weight: 25 },
          ],
          rollout,
        },
      ],
      history: () => [],
    };
    expect(aliasProviders(() => aliases).aliases()[0]).toEqual({
      name: "prod",
      hash: A,
      history: [],
      split: [
        { hash: A, weight: 75 },
        { hash: B, weight: 25 },
      ],
      rollout,
    });
  });
});
