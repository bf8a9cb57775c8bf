import { beforeEach, describe, expect, test } from "bun:test";
import type { DeploymentState } from "../../model/deployment.ts";
import { parseManifest } from "../../model/manifest.ts";
import type { HashReport } from "../../model/reports.ts";
import { AliasService } from "../aliases/alias-service.ts";
import { LocalAliasBackend } from "../aliases/local-backend.ts";
import { StateStore } from "../state/store.ts";
import { AgentGoneHashes } from "./gone-hashes.ts";
import { RetiredElsewhereLog } from "./retired-elsewhere.ts";

const V1 = "1".repeat(32);
const V2 = "2".repeat(32);
const V3 = "3".repeat(32);
const manifest = parseManifest({ schema: 1, name: "web", exec: ["/bin/true"] });

let now: number;
let store: StateStore;
let aliases: AliasService;
let gone: AgentGoneHashes;
let reports: Map<string, HashReport[]>;
let heard: RetiredElsewhereLog;

beforeEach(() => {
  now = 1_000_000;
  store = new StateStore(":memory:", () => now);
  aliases = new AliasService(new LocalAliasBackend("a"), store.db, () => now);
  gone = new AgentGoneHashes(store, aliases);
  reports = new Map();
  heard = new RetiredElsewhereLog(store, (m) => reports.get(m), 3);
});

function run(hash: string): number {
  const d = store.beginActivation(`/nix/store/${hash}-web`, hash, manifest, "activate");
  store.transition(hash, d.generation, "ready", "ready");
  return d.generation;
}

function report(member: string, states: Record<string, DeploymentState>): void {
  reports.set(
    member,
    Object.entries(states).map(([hash, state]) => ({ hash, state, inFlight: 0, holds: 0, refs: [] })),
  );
  heard.changed(member);
}

describe("gone here", () => {
  test("retired by the retirer: gone, with where its aliases point now", () => {
    aliases.set({ prod: V1 });
    now += 1000;
    aliases.set({ prod: V2, old: V1 });
    now += 1000;
    aliases.set({ old: null });
    const generation = run(V1);
    now = 5_000_000;
    store.transition(V1, generation, "retired", "retired: unwanted");
    expect(gone.lookup(V1)).toEqual({
      hash: V1,
      retiredAt: 5_000_000,
      byHand: false,
      // the newest write first: removing `old` came after prod moved to V2
      aliases: [
        { name: "old", hash: null },
        { name: "prod", hash: V2 },
      ],
    });
    expect(gone.lookup(V3)).toBeUndefined(); // never known: 404
  });

  test("deactivated by hand: gone, even while an alias points at it", () => {
    const generation = run(V1);
    store.retireByHand(V1, generation, "deactivated");
    aliases.set({ prod: V1 });
    expect(gone.lookup(V1)).toMatchObject({ hash: V1, byHand: true, aliases: [{ name: "prod", hash: V1 }] });
  });

  test("not gone: live again after its retirement, or aliased or pinned again (the retirer brings it back)", () => {
    const generation = run(V1);
    store.transition(V1, generation, "retired", "retired");
    aliases.set({ prod: V1 });
    expect(gone.lookup(V1)).toBeUndefined();
    aliases.set({ prod: V2 });
    expect(gone.lookup(V1)).toBeDefined();
    aliases.pin(V1);
    expect(gone.lookup(V1)).toBeUndefined();
    aliases.unpin(V1);
    run(V1); // activated again by hand
    expect(gone.lookup(V1)).toBeUndefined();
  });
});

describe("gone elsewhere", () => {
  test("a member's retired report is remembered, survives a restart and outlives the report", () => {
    report("b", { [V1]: "retired", [V2]: "ready" });
    now = 2_000_000;
    heard.flush(now);
    expect(gone.lookup(V1)).toEqual({ hash: V1, retiredAt: 2_000_000, byHand: false, aliases: [] });
    expect(gone.lookup(V2)).toBeUndefined();
    // the report ages out; a new process (same database) still knows
    report("b", { [V2]: "ready" });
    heard.flush(now + 600_001);
    const again = new AgentGoneHashes(store, new AliasService(new LocalAliasBackend("a"), store.db));
    expect(again.lookup(V1)?.retiredAt).toBe(2_000_000);
    // the first time heard is kept
    report("c", { [V1]: "retired" });
    heard.flush(now + 700_000);
    expect(gone.lookup(V1)?.retiredAt).toBe(2_000_000);
  });

  test("a member that runs it again makes it live: forgotten", () => {
    report("b", { [V1]: "retired" });
    heard.flush(now);
    report("c", { [V1]: "activating" });
    heard.flush(now + 1);
    expect(store.retiredElsewhere(V1)).toBeUndefined();
    expect(gone.lookup(V1)).toBeUndefined();
  });

  test("a local row newer than the report wins: a later failed activation here is a 404 again", () => {
    report("b", { [V1]: "retired" });
    heard.flush(now);
    now += 10;
    const d = store.beginActivation(`/nix/store/${V1}-web`, V1, manifest, "activate");
    store.transition(V1, d.generation, "failed", "failed");
    expect(gone.lookup(V1)).toBeUndefined();
  });

  test("bounded: the oldest are forgotten first, every write one transaction", () => {
    for (const [i, hash] of [V1, V2, V3, "4".repeat(32)].entries()) {
      report(`m${i}`, { [hash]: "retired" });
      heard.flush(now + i);
    }
    expect(store.retiredElsewhereHashes().sort()).toEqual([V2, V3, "4".repeat(32)]);
    expect(gone.lookup(V1)).toBeUndefined();
    // what was forgotten can be heard again
    report("m0", { [V1]: "retired" });
    heard.flush(now + 10);
    expect(store.retiredElsewhere(V1)?.retiredAt).toBe(now + 10);
  });

  test("reports are read only for members whose report changed", () => {
    let reads = 0;
    const counting = new RetiredElsewhereLog(store, (m) => {
      reads++;
      return reports.get(m);
    });
    report("b", { [V1]: "retired" });
    counting.flush(now);
    counting.flush(now);
    expect(reads).toBe(0); // `changed` went to the other log
    counting.changed("b");
    counting.changed("b");
    counting.flush(now);
    counting.flush(now);
    expect(reads).toBe(1);
  });
});
