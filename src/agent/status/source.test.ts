import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { deploy, fakeHash, fillStore, fixtureProviders, H } from "../../../test/support/status/fixtures.ts";
import { StateStore } from "../state/store.ts";
import { storeStatusSource } from "./source.ts";

const url = (h: string) => `http://${h}.hashd.test/`;
const stores: StateStore[] = [];
const open = (file = ":memory:", now?: () => number) => {
  const s = new StateStore(file, now);
  stores.push(s);
  return s;
};
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

/** Resolves with how many times onChange fired within `ms`. */
async function changesWithin(subscribe: (f: () => void) => () => void, ms: number, act?: () => void) {
  let n = 0;
  const stop = subscribe(() => n++);
  act?.();
  await Bun.sleep(ms);
  stop();
  return n;
}

describe("storeStatusSource", () => {
  test("a host alone: its rows, URLs, readiness, events with reasons, itself as the only member", () => {
    const store = open(":memory:", () => 1_700_000_000_000);
    fillStore(store);
    const snap = storeStatusSource(store, url, {
      self: "alpha",
      zone: "z",
      now: () => 1_700_000_000_500,
    }).snapshot();
    expect(snap.self).toBe("alpha");
    expect(snap.generatedAt).toBe(1_700_000_000_500);
    expect(snap.members).toEqual([
      {
        name: "alpha",
        address: "",
        state: "alive",
        incarnation: 0,
        lastContact: snap.generatedAt,
        self: true,
      },
    ]);
    const web2 = snap.hashes.find((h) => h.hash === H.web2);
    expect(web2).toMatchObject({
      name: "web",
      state: "ready",
      url: url(H.web2),
      readiness: "http",
      readinessPath: "/health",
      inFlight: 0,
      holds: 0,
      hosts: [{ member: "alpha", state: "ready", inFlight: 0, holds: 0 }],
      refs: [],
    });
    const failed = snap.hashes.find((h) => h.hash === H.report);
    expect(failed?.state).toBe("failed");
    expect(failed?.error).toContain("cannot open /var/lib/report/db");
    expect(snap.hashes.at(-1)).toMatchObject({ hash: H.old, state: "retired", hosts: [] });
    expect(snap.events[0]).toEqual({
      at: 1_700_000_000_000,
      hash: H.api1,
      kind: "draining",
      message: "no alias, pin or wanted hash reaches it",
    });
    expect(snap.aliases).toEqual([]);
  });

  test("with providers: members, other hosts' reports summed, refs, verdicts, aliases", () => {
    const store = open();
    fillStore(store);
    const p = fixtureProviders(5000);
    const snap = storeStatusSource(store, url, {
      ...p,
      reports: () => [
        ...(p.reports?.() ?? []),
        // our own name in gossip: ignored, the store is fresher
        { member: "alpha", hashes: [{ hash: H.web2, state: "draining", inFlight: 99, holds: 9, refs: [] }] },
        {
          member: "charlie",
          hashes: [{ hash: fakeHash("elsewhere"), state: "ready", inFlight: 1, holds: 0, refs: [H.db] }],
        },
      ],
    }).snapshot();
    expect(snap.members.map((m) => [m.name, m.state, m.self])).toEqual([
      ["alpha", "alive", true],
      ["bravo", "alive", false],
      ["charlie", "suspect", false],
      ["delta", "dead", false],
    ]);
    const web2 = snap.hashes.find((h) => h.hash === H.web2);
    expect(web2?.hosts).toEqual([
      { member: "alpha", state: "ready", inFlight: 3, holds: 0 },
      { member: "bravo", state: "ready", inFlight: 4, holds: 0 },
    ]);
    expect([web2?.inFlight, web2?.holds, web2?.refs, web2?.verdict]).toEqual([
      7,
      0,
      [H.api2],
      "wanted: alias prod",
    ]);
    const remote = snap.hashes.find((h) => h.hash === fakeHash("elsewhere"));
    expect(remote).toMatchObject({ name: null, state: null, readiness: null, refs: [H.db], inFlight: 1 });
    expect(snap.aliases.map((a) => a.name)).toEqual(["prod", "staging"]);
  });

  test("refs default to what other members report for the same hash", () => {
    const store = open();
    fillStore(store);
    const { refs: _unused, ...p } = fixtureProviders(0);
    const snap = storeStatusSource(store, url, p).snapshot();
    expect(snap.hashes.find((h) => h.hash === H.web1)?.refs).toEqual([H.api1]);
    expect(snap.hashes.find((h) => h.hash === H.worker)?.refs).toEqual([]);
  });

  test("keeps only the most recently retired rows", () => {
    let now = 1;
    const store = open(":memory:", () => now++);
    for (let i = 0; i < 5; i++) deploy(store, "old", fakeHash(`old${i}`), ["retired: gone"]);
    const snap = storeStatusSource(store, url, { retiredLimit: 2 }).snapshot();
    expect(snap.hashes.map((h) => h.hash)).toEqual([fakeHash("old4"), fakeHash("old3")]);
  });

  test("subscribe fires when the store changes, also through another connection, and not otherwise", async () => {
    const file = `${mkdtempSync(`${tmpdir()}/hashd-status-`)}/state.sqlite`;
    const store = open(file);
    fillStore(store);
    const source = storeStatusSource(store, url, { pollMs: 20 });
    expect(await changesWithin(source.subscribe, 120)).toBe(0);
    expect(await changesWithin(source.subscribe, 120, () => store.event(H.db, "note", "hello"))).toBe(1);
    const other = open(file); // e.g. the CLI or a test writing the same database
    expect(
      await changesWithin(source.subscribe, 120, () =>
        other.transition(H.web2, 1, "draining", "moved", null),
      ),
    ).toBe(1);
  });

  test("subscribe fires when only a provider changed (in flight), ignoring members' lastContact", async () => {
    const store = open();
    fillStore(store);
    let inFlight = 0;
    let contact = 0;
    const source = storeStatusSource(store, url, {
      pollMs: 20,
      inFlight: () => inFlight,
      members: () => [{ name: "b", address: "x", state: "alive", incarnation: 1, lastContact: contact++ }],
    });
    expect(await changesWithin(source.subscribe, 100)).toBe(0);
    expect(await changesWithin(source.subscribe, 100, () => inFlight++)).toBe(1);
  });

  test("the poll runs only while someone listens", async () => {
    const store = open();
    let calls = 0;
    const source = storeStatusSource(store, url, { pollMs: 10, inFlight: () => calls++ });
    deploy(store, "a", fakeHash("a"), ["ready: ok"]);
    const stop = source.subscribe(() => {});
    await Bun.sleep(50);
    stop();
    const after = calls;
    await Bun.sleep(50);
    expect(after).toBeGreaterThan(2);
    expect(calls).toBe(after);
  });

  test("per-hash events beyond the snapshot's window", () => {
    const store = open();
    fillStore(store);
    for (let i = 0; i < 60; i++) store.event(H.db, "note", `n${i}`);
    const source = storeStatusSource(store, url, {});
    expect(source.snapshot().events.some((e) => e.kind === "ready")).toBe(false);
    expect(source.events?.(H.web2, 100).map((e) => e.kind)).toEqual(["ready", "activating"]);
  });
});
