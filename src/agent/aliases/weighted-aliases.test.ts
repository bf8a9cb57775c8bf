import { beforeEach, describe, expect, test } from "bun:test";
import { startRollout } from "../../model/rollout.ts";
import { StateStore } from "../state/store.ts";
import { AliasService, latestAliasRecords, retentionPolicy } from "./alias-service.ts";
import { formatAliasValue, parseAliasValue } from "./alias-value.ts";
import { LocalAliasBackend } from "./local-backend.ts";

const V1 = "1".repeat(32);
const V2 = "2".repeat(32);
const V3 = "3".repeat(32);
const V4 = "4".repeat(32);
const V5 = "5".repeat(32);

let now: number;
let store: StateStore;
let aliases: AliasService;

beforeEach(() => {
  now = 1_000;
  store = new StateStore(":memory:");
  aliases = new AliasService(new LocalAliasBackend("a"), store.db, () => now++);
});

describe("parseAliasValue: a hash or a split, refused whole when anything is off", () => {
  test("a hash, a hash at 100, and splits of 2 to 4 keep their order; hash is the heaviest", () => {
    expect(parseAliasValue(V1)).toEqual({ hash: V1 });
    expect(parseAliasValue(`${V1}:100`)).toEqual({ hash: V1 });
    expect(parseAliasValue(`${V1}:90,${V2}:10`)).toEqual({
      hash: V1,
      split: [
        { hash: V1, weight: 90 },
        { hash: V2, weight: 10 },
      ],
    });
    expect(parseAliasValue(`${V1}:10, ${V2}:60,${V3}:30`).hash).toBe(V2);
    expect(parseAliasValue(`${V1}:25,${V2}:25,${V3}:25,${V4}:25`).hash).toBe(V1); // a tie: the first
  });

  test.each([
    [`${V1}:90,${V2}:20`, /sum to 100, got 110/],
    [`${V1}:100,${V2}:0`, /from 1 to 99/],
    [`${V1}:50,${V1}:50`, /appears twice/],
    [`${V1}:20,${V2}:20,${V3}:20,${V4}:20,${V5}:20`, /at most 4/],
    [`${V1}:50`, /takes weight 100/],
    [`${V1}:50,nope:50`, /not a store hash/],
    [`${V1}:5x,${V2}:95`, /expected <hash>:<weight>/],
    [`${V1}:-5,${V2}:105`, /not a store hash|expected/],
    ["x".repeat(300), /longer than 256/],
    [`${V1},${V2}`, /expected <hash>:<weight>/],
  ])("refuses %p", (value, message) => {
    expect(() => parseAliasValue(value)).toThrow(message);
  });

  test("formatAliasValue writes a split back the way it is typed", () => {
    expect(formatAliasValue(parseAliasValue(`${V1}:90,${V2}:10`))).toBe(`${V1}:90,${V2}:10`);
    expect(formatAliasValue({ hash: V1 })).toBe(V1);
  });
});

describe("a weighted alias is an alias", () => {
  test("written atomically with plain ones, kept in the history and restored from it", () => {
    aliases.set({ prod: V1, api: V3 });
    aliases.set({ prod: `${V1}:90,${V2}:10`, api: V4 });
    const prod = aliases.current("prod");
    expect(prod?.hash).toBe(V1);
    expect(prod?.split).toEqual([
      { hash: V1, weight: 90 },
      { hash: V2, weight: 10 },
    ]);
    expect(aliases.current("api")?.setAt).toBe(prod?.setAt as number);
    expect(aliases.history("prod")[0]?.split?.map((t) => t.weight)).toEqual([90, 10]);
    const restored = latestAliasRecords(store.db).find((r) => r.name === "prod");
    expect(restored?.split).toEqual(prod?.split as never);
  });

  test("every target is wanted, aliased, a root and pinnable by a cookie; the heaviest is what resolve says", () => {
    aliases.set({ prod: V3 });
    aliases.set({ prod: `${V1}:90,${V2}:10` });
    for (const h of [V1, V2]) {
      expect(aliases.isWanted(h)).toBe(true);
      expect(aliases.isAliased(h)).toBe(true);
    }
    expect(aliases.isAliased(V3)).toBe(false);
    expect(aliases.resolve("prod")).toBe(V1);
    const roots = aliases.roots(retentionPolicy({ policy: "retire" }));
    expect(roots).toEqual([
      { hash: V1, reason: "alias prod (90%)" },
      { hash: V2, reason: "alias prod (10%)" },
    ]);
    const route = aliases.routeOf("prod");
    expect(route?.split?.map((t) => t.hash)).toEqual([V1, V2]);
    // earlier targets too (skew protection after a switch), nothing else
    expect([...(route?.pinnable ?? [])].sort()).toEqual([V1, V2, V3]);
    expect(aliases.routeOf("nope")).toBeUndefined();
  });

  test("rollback of a split goes to 100% of the hash the alias had before it", () => {
    aliases.set({ prod: V1 });
    aliases.set({ prod: `${V1}:90,${V2}:10` });
    aliases.set({ prod: `${V1}:50,${V2}:50` });
    const back = aliases.rollback("prod", () => true);
    expect(back.hash).toBe(V1);
    expect(back.split).toBeUndefined();
    // and from there, the split's other hash is an earlier target (keep-last keeps it)
    expect(aliases.current("prod")?.previous).toEqual([V2]);
  });

  test("a canary its rollout aborted is no longer pinnable: its sticky clients go back too", () => {
    aliases.set({ prod: V1 });
    const state = startRollout({ from: V1, to: V2, now: 5_000 });
    aliases.write([
      {
        name: "prod",
        hash: V1,
        split: [
          { hash: V1, weight: 95 },
          { hash: V2, weight: 5 },
        ],
        rollout: state,
      },
    ]);
    expect(aliases.routeOf("prod")?.pinnable.has(V2)).toBe(true);
    aliases.write([{ name: "prod", hash: V1, rollout: { ...state, status: "aborted" } }]);
    expect(aliases.current("prod")?.previous).toContain(V2); // still an earlier target (history, keep-last)
    expect(aliases.routeOf("prod")?.pinnable.has(V2)).toBe(false);
    expect(aliases.routeOf("prod")?.pinnable.has(V1)).toBe(true);
  });

  test("a rollout's baseline stays wanted while it runs, also at 100% of the canary", () => {
    aliases.set({ prod: V1 });
    const state = startRollout({ from: V1, to: V2, now: 5_000, steps: [100] });
    aliases.write([{ name: "prod", hash: V2, rollout: state }]);
    expect(aliases.isWanted(V1)).toBe(true);
    expect(aliases.roots(retentionPolicy({ policy: "retire" }))).toContainEqual({
      hash: V1,
      reason: "baseline of the rollout of prod",
    });
    aliases.write([{ name: "prod", hash: V2, rollout: { ...state, status: "done" } }]);
    expect(aliases.isWanted(V1)).toBe(false);
    expect(aliases.history("prod")[0]?.rollout?.status).toBe("done");
  });
});
