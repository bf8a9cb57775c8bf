import { beforeEach, describe, expect, test } from "bun:test";
import { parseConfig } from "../../model/config.ts";
import { isAliasName } from "../../model/names.ts";
import { StateStore } from "../state/store.ts";
import { AliasService, retentionPolicy } from "./alias-service.ts";
import { LocalAliasBackend } from "./local-backend.ts";
import { parseAliasName } from "./names.ts";

const V1 = "1".repeat(32);
const V2 = "2".repeat(32);
const V3 = "3".repeat(32);

let now: number;
let store: StateStore;
let aliases: AliasService;

beforeEach(() => {
  now = 1_000;
  store = new StateStore(":memory:");
  aliases = new AliasService(new LocalAliasBackend("a"), store.db, () => now++);
});

describe("alias names", () => {
  test.each(["prod", "pr-42", "a", "x".repeat(63)])("accepts %p", (n) => expect(isAliasName(n)).toBe(true));
  test.each(["", "Prod", "-x", "x-", "a.b", "pin:x", "x".repeat(64), V1, "../x"])("refuses %p", (n) => {
    expect(() => parseAliasName(n)).toThrow(/not an alias name/);
  });
});

describe("aliases", () => {
  test("several aliases switch in one write with one timestamp", () => {
    aliases.set({ prod: V1, api: V2 });
    const list = aliases.list();
    expect(list.map((a) => [a.name, a.hash])).toEqual([
      ["api", V2],
      ["prod", V1],
    ]);
    expect(list[0]?.setAt).toBe(list[1]?.setAt);
  });

  test("a bad entry refuses the whole write", () => {
    expect(() => aliases.set({ prod: V1, "Bad Name": V2 })).toThrow(/not an alias name/);
    expect(() => aliases.set({ prod: "nope" })).toThrow(/not a store hash/);
    expect(aliases.list()).toEqual([]);
  });

  test("history and rollback, and rollback refuses a retired hash", () => {
    aliases.set({ prod: V1 });
    aliases.set({ prod: V2 });
    expect(aliases.history("prod").map((h) => h.hash)).toEqual([V2, V1]);
    expect(aliases.rollback("prod", () => true).hash).toBe(V1);
    expect(aliases.resolve("prod")).toBe(V1);
    expect(aliases.rollback("prod", () => true).hash).toBe(V2);
    expect(() => aliases.rollback("prod", (h) => h !== V1)).toThrow(/is retired/);
    expect(aliases.resolve("prod")).toBe(V2);
    expect(() => aliases.rollback("nope", () => true)).toThrow(/does not exist/);
  });

  test("remove leaves a tombstone in the history", () => {
    aliases.set({ prod: V1 });
    aliases.remove("prod");
    expect(aliases.resolve("prod")).toBeUndefined();
    expect(aliases.history("prod").map((h) => h.hash)).toEqual([null, V1]);
    expect(() => aliases.remove("prod")).toThrow(/does not exist/);
  });

  test("pins are roots but not aliases", () => {
    aliases.pin(V3);
    expect(aliases.list()).toEqual([]);
    expect(aliases.pins()).toEqual([V3]);
    expect(aliases.roots({ kind: "retire" })).toEqual([{ hash: V3, reason: "pinned" }]);
    aliases.unpin(V3);
    expect(aliases.pins()).toEqual([]);
    expect(() => aliases.unpin(V3)).toThrow(/not pinned/);
  });

  test("retention keep-last keeps the previous hashes of each alias", () => {
    aliases.set({ prod: V1 });
    aliases.set({ prod: V2 });
    aliases.set({ prod: V3 });
    expect(aliases.roots({ kind: "retire" }).map((r) => r.hash)).toEqual([V3]);
    expect(aliases.roots({ kind: "keep-last", count: 2 }).map((r) => [r.hash, r.reason])).toEqual([
      [V3, "alias prod"],
      [V2, "one of the last 2 of alias prod"],
    ]);
  });

  test("keep-last and rollback follow the winning record, so a member that missed writes agrees", () => {
    aliases.set({ prod: V1 });
    aliases.set({ prod: V2 });
    aliases.set({ prod: V3 });
    // member b was down for all three writes: it learns only the winner (gossip, push-pull)
    const otherDb = new StateStore(":memory:");
    const winner = aliases.latestRecords();
    const b = new AliasService(new LocalAliasBackend("b", winner), otherDb.db, () => now++);
    for (const r of winner) b.record(r);
    expect(b.history("prod").map((h) => h.hash)).toEqual([V3]);
    const policy = { kind: "keep-last", count: 3 } as const;
    expect(b.roots(policy)).toEqual(aliases.roots(policy));
    expect(b.roots(policy).map((r) => r.hash)).toEqual([V3, V2, V1]);
    expect(b.current("prod")?.previous).toEqual([V2, V1]);
    expect(b.rollback("prod", () => true).hash).toBe(V2);
  });

  test("a record kept from before records carried previous targets falls back to this agent's history", () => {
    // rows as an agent of the previous version recorded them (no previous column yet: NULL)
    const insert = store.db.query(
      "INSERT INTO alias_history (name, hash, hlc_wall, hlc_logical, origin, seen_at) VALUES (?, ?, ?, 0, 'a', 0)",
    );
    insert.run("prod", V1, 10);
    insert.run("prod", V2, 20);
    insert.run("prod", V3, 30);
    const upgraded = new AliasService(
      new LocalAliasBackend("a", aliases.latestRecords()),
      store.db,
      () => now++,
    );
    expect(upgraded.current("prod")).toMatchObject({ hash: V3, previous: [] });
    expect(upgraded.roots({ kind: "keep-last", count: 2 }).map((r) => r.hash)).toEqual([V3, V2]);
    // the next write carries them, from then on for every member
    upgraded.set({ prod: V1 });
    expect(upgraded.current("prod")?.previous).toEqual([V3]);
  });

  test("the table is restored from the history after a restart", () => {
    aliases.set({ prod: V1, api: V2 });
    aliases.set({ prod: V3 });
    aliases.remove("api");
    const restored = new AliasService(
      new LocalAliasBackend("a", aliases.latestRecords()),
      store.db,
      () => now++,
    );
    expect(restored.list().map((a) => [a.name, a.hash, a.previous])).toEqual([["prod", V3, [V1]]]);
    restored.set({ prod: V1 });
    expect(restored.resolve("prod")).toBe(V1);
  });
});

describe("retentionPolicy", () => {
  test("the config's retention is the policy the roots and the retirer read", () => {
    const of = (retention: unknown) => retentionPolicy(parseConfig({ retention }).retention);
    expect(of({ policy: "retire" })).toEqual({ kind: "retire" });
    expect(of({ policy: "keep" })).toEqual({ kind: "keep" });
    expect(of({ policy: "keep-last", count: 3 })).toEqual({ kind: "keep-last", count: 3 });
    expect(retentionPolicy(parseConfig({}).retention)).toEqual({ kind: "retire" });
  });
});
