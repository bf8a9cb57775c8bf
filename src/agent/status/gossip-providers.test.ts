import { describe, expect, test } from "bun:test";
import { fakeMemberInfo } from "../../../test/support/gossip/fixtures.ts";
import { fakeHash } from "../../../test/support/status/fixtures.ts";
import type { MemberAppState } from "../../model/reports.ts";
import { StateStore } from "../state/store.ts";
import { aliasProviders, clusterProviders } from "./gossip-providers.ts";
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
    // the dead member's last report is not shown: it runs nothing
    expect([...p.reports()].map((r) => r.member)).toEqual(["n2"]);
    const store = new StateStore(":memory:");
    const snap = storeStatusSource(store, (h) => `http://${h}.z/`, p).snapshot();
    expect(snap.members.map((m) => [m.name, m.state, m.self])).toEqual([
      ["n1", "alive", true],
      ["n2", "suspect", false],
      ["n3", "dead", false],
    ]);
    expect(snap.hashes).toMatchObject([{ hash: A, state: null, inFlight: 2, holds: 1, refs: [B] }]);
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
});
