/**
 * Test support: a small cluster written into a real StateStore through its own methods, plus the
 * provider data (members, reports, aliases, verdicts) that gossip and the planner would give.
 * Used by the unit tests and by the browser test; not imported by the agent.
 */
import { createHash } from "node:crypto";
import type { StateStore } from "../../../src/agent/state/store.ts";
import type { MemberLike, MemberReports, StatusProviders } from "../../../src/agent/status/source.ts";
import type { StatusAlias } from "../../../src/agent/status/types.ts";
import { parseManifest } from "../../../src/model/manifest.ts";

const NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

/** A valid, stable store hash made from a seed. */
export function fakeHash(seed: string): string {
  const bytes = createHash("sha256").update(seed).digest();
  return Array.from(bytes.subarray(0, 32), (b) => NIX32[b % 32]).join("");
}

export const H = {
  web2: fakeHash("web-2"),
  web1: fakeHash("web-1"),
  api2: fakeHash("api-2"),
  api1: fakeHash("api-1"),
  db: fakeHash("db"),
  worker: fakeHash("worker"),
  report: fakeHash("report"),
  old: fakeHash("web-0"),
};

/** A clock for StateStore that moves `stepMs` per reading: rows and events get distinct, ordered times. */
export function tickingClock(start: number, stepMs = 7000): () => number {
  let t = start;
  return () => {
    t += stepMs;
    return t;
  };
}

const manifest = (name: string, readiness?: object) =>
  parseManifest({ schema: 1, name, exec: [`/bin/${name}`], ...(readiness ? { readiness } : {}) });

/** Activates `hash` and walks it through `states`, each with a reason, as the agent would. */
export function deploy(
  store: StateStore,
  name: string,
  hash: string,
  states: string[],
  readiness?: object,
): void {
  const d = store.beginActivation(
    `/nix/store/${hash}-${name}`,
    hash,
    manifest(name, readiness),
    "hashd activate",
  );
  for (const s of states) {
    const [state = "", ...why] = s.split(": ");
    const error = state === "failed" ? why.join(": ") : null;
    store.transition(hash, d.generation, state as "ready", why.join(": ") || state, error);
  }
}

export function fillStore(store: StateStore): void {
  deploy(store, "web", H.old, [
    "ready: readiness: http GET /health answered 200",
    "retired: quiet on every member",
  ]);
  deploy(store, "db", H.db, ["ready: sd_notify READY=1"], { type: "notify" });
  deploy(store, "api", H.api1, ["ready: accepted a probe connection"]);
  deploy(store, "web", H.web1, ["ready: http GET /health answered 200"], { type: "http", path: "/health" });
  deploy(store, "worker", H.worker, ["ready: accepted", "idle: scaled to zero after 300 s without requests"]);
  deploy(store, "api", H.api2, ["ready: accepted a probe connection"]);
  deploy(store, "web", H.web2, ["ready: http GET /health answered 200"], { type: "http", path: "/health" });
  deploy(store, "report", H.report, [
    "failed: readiness: process exited with status 1\nreport[812]: error: cannot open /var/lib/report/db\nreport[812]: exiting",
  ]);
  store.transition(H.web1, 1, "draining", "no alias, pin or wanted hash reaches it", null, "ready");
  store.transition(H.api1, 1, "draining", "no alias, pin or wanted hash reaches it", null, "ready");
}

export const REFS: Record<string, string[]> = {
  [H.web2]: [H.api2],
  [H.web1]: [H.api1],
  [H.api2]: [H.db],
  [H.api1]: [H.db],
  [H.worker]: [H.db],
  [H.old]: [H.api1],
};

export function fixtureProviders(now: number): StatusProviders {
  const members: MemberLike[] = [
    { name: "alpha", address: "10.0.0.1:7946", state: "alive", incarnation: 3, lastContact: now },
    { name: "bravo", address: "10.0.0.2:7946", state: "alive", incarnation: 1, lastContact: now - 800 },
    { name: "charlie", address: "10.0.0.3:7946", state: "suspect", incarnation: 2, lastContact: now - 4200 },
    { name: "delta", address: "10.0.0.4:7946", state: "dead", incarnation: 5, lastContact: now - 95_000 },
  ];
  const reports: MemberReports[] = [
    {
      member: "bravo",
      hashes: [
        { hash: H.web2, state: "ready", inFlight: 4, holds: 0, refs: [H.api2] },
        { hash: H.web1, state: "draining", inFlight: 2, holds: 0, refs: [H.api1] },
        { hash: H.api2, state: "ready", inFlight: 1, holds: 1, refs: [H.db] },
      ],
    },
    { member: "charlie", hashes: [{ hash: H.db, state: "ready", inFlight: 0, holds: 0, refs: [] }] },
  ];
  const aliases: StatusAlias[] = [
    {
      name: "prod",
      hash: H.web2,
      history: [
        { hash: H.web2, at: now - 60_000, by: "alpha" },
        { hash: H.web1, at: now - 86_400_000, by: "bravo" },
      ],
    },
    { name: "staging", hash: H.web2, history: [{ hash: H.web2, at: now - 120_000, by: "alpha" }] },
  ];
  const verdicts = new Map([
    [H.web2, { reason: "wanted: alias prod" }],
    [H.api2, { reason: "wanted: referenced by wanted web2" }],
    [H.db, { reason: "wanted: referenced by wanted api2" }],
    [H.web1, { reason: "draining, kept: 2 in flight and 0 hold(s) on bravo" }],
    [H.api1, { reason: `draining, kept: dependent ${H.web1} is draining on alpha` }],
  ]);
  return {
    self: "alpha",
    zone: "hashd.test",
    members: () => members,
    reports: () => reports,
    aliases: () => aliases,
    inFlight: (h) => (h === H.web2 ? 3 : 0),
    holds: (h) => (h === H.api1 ? 1 : 0),
    refs: (h) => REFS[h] ?? [],
    verdicts: () => verdicts,
  };
}
