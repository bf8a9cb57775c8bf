import { describe, expect, test } from "bun:test";
import { fakeMemberInfo } from "../gossip/fixtures.ts";
import type { AliasRecord, MemberAppState } from "../gossip/types.ts";
import { StateStore } from "../state/store.ts";
import { fakeHash } from "./fixtures.ts";
import { AliasHistory, gossipProviders } from "./gossip-providers.ts";
import { storeStatusSource } from "./source.ts";

const [A, B] = [fakeHash("a"), fakeHash("b")];
const rec = (name: string, hash: string | null, wall: number, origin = "n1"): AliasRecord => ({
  name,
  hash,
  hlc: { wall, logical: 0 },
  origin,
  previous: [],
});

describe("AliasHistory", () => {
  test("keeps each winning write once, newest first, the current value on top", () => {
    const h = new AliasHistory(3);
    h.record(rec("prod", A, 10));
    h.record(rec("prod", A, 10)); // the same write again (gossip repeats)
    h.record(rec("prod", B, 20, "n2"));
    expect(h.views([rec("prod", null, 30)])).toEqual([
      {
        name: "prod",
        hash: null,
        history: [
          { hash: null, at: 30, by: "n1" },
          { hash: B, at: 20, by: "n2" },
          { hash: A, at: 10, by: "n1" },
        ],
      },
    ]);
    h.record(rec("prod", A, 40));
    expect(h.views([rec("prod", A, 40)])[0]?.history.map((c) => c.at)).toEqual([40, 30, 20]);
  });
});

describe("gossipProviders", () => {
  test("members, reports of live members other than itself, aliases with history", () => {
    const states: Record<string, MemberAppState> = {
      n1: { hashes: [{ hash: A, state: "ready", inFlight: 9, holds: 0, refs: [] }] },
      n2: { hashes: [{ hash: A, state: "ready", inFlight: 2, holds: 1, refs: [B] }] },
      n3: { hashes: [{ hash: A, state: "ready", inFlight: 5, holds: 0, refs: [] }] },
    };
    const node = {
      name: "n1",
      members: () => [
        fakeMemberInfo("n1", "alive"),
        fakeMemberInfo("n2", "suspect"),
        fakeMemberInfo("n3", "dead"),
      ],
      memberState: (name: string) => states[name] ?? null,
      aliases: () => [rec("prod", A, 10)],
    };
    const p = gossipProviders(node);
    expect(p.self).toBe("n1");
    expect([...p.reports()].map((r) => r.member)).toEqual(["n2"]);
    const store = new StateStore(":memory:");
    const snap = storeStatusSource(store, (h) => `http://${h}.z/`, p).snapshot();
    expect(snap.members.map((m) => [m.name, m.state, m.self])).toEqual([
      ["n1", "alive", true],
      ["n2", "suspect", false],
      ["n3", "dead", false],
    ]);
    expect(snap.hashes).toMatchObject([{ hash: A, state: null, inFlight: 2, holds: 1, refs: [B] }]);
    expect(snap.aliases).toEqual([{ name: "prod", hash: A, history: [{ hash: A, at: 10, by: "n1" }] }]);
    store.close();
  });
});
