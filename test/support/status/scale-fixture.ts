/**
 * Test support: the status page at the size of a real team (issue 17). 5 members (bravo alive,
 * charlie suspect, delta dead, echo alive), 20 services in dependency chains, 48 hashes in every
 * state, 15 aliases (prod, staging with a staged rollout, pr-101 … pr-113) and about 200 events,
 * written into a real StateStore through its own methods. The other members' reports carry the
 * service name and a short reason, as gossip does now. `traffic` makes the in-flight counts move
 * on every reading, as under load.
 *
 * Used by the unit tests, the figures script (measure.ts) and the screenshot script.
 */
import type { StateStore } from "../../../src/agent/state/store.ts";
import type { MemberLike, MemberReports, StatusProviders } from "../../../src/agent/status/source.ts";
import type { StatusAlias } from "../../../src/agent/status/types.ts";
import { parseManifest } from "../../../src/model/manifest.ts";
import type { HashReport } from "../../../src/model/reports.ts";
import { fakeHash } from "./fixtures.ts";

/** service → the services it calls; listed callers first */
export const SERVICES: Record<string, string[]> = {
  web: ["api", "auth", "search"],
  admin: ["api", "auth", "billing"],
  "mobile-gw": ["api", "auth", "notify"],
  docs: ["search", "images"],
  api: ["auth", "catalog", "cart", "orders", "db-proxy"],
  auth: ["sessions", "db-proxy"],
  search: ["catalog", "cache"],
  billing: ["ledger", "db-proxy", "mailer"],
  notify: ["queue", "mailer"],
  catalog: ["db-proxy", "cache", "images"],
  cart: ["sessions", "cache"],
  orders: ["ledger", "queue", "db-proxy"],
  ledger: ["db-proxy"],
  sessions: ["cache"],
  images: [],
  mailer: ["queue"],
  queue: [],
  cache: [],
  "db-proxy": ["metrics"],
  metrics: [],
};

const STAGING = ["web", "api", "auth", "search", "catalog", "orders", "ledger", "cart"];
const OLD = ["web", "api", "auth", "catalog", "orders", "cart", "db-proxy"];
const PREVIEW = [
  "web",
  "web",
  "web",
  "admin",
  "admin",
  "docs",
  "api",
  "api",
  "search",
  "mobile-gw",
  "auth",
  "web",
  "docs",
];

export interface ScaleVersion {
  service: string;
  hash: string;
  track: string;
}

export interface ScaleFixture {
  versions: ScaleVersion[];
  byTrack: (service: string, track: string) => string;
  refsOf: Map<string, string[]>;
  providers: StatusProviders;
  /** turn the moving in-flight counts on or off */
  traffic: { on: boolean };
}

export function scaleFixture(store: StateStore, now: number): ScaleFixture {
  const versions: ScaleVersion[] = [];
  const add = (service: string, track: string) => {
    const v = { service, hash: fakeHash(`scale:${service}:${track}`), track };
    versions.push(v);
    return v;
  };
  for (const s of Object.keys(SERVICES)) add(s, "prod");
  for (const s of STAGING) add(s, "staging");
  for (const s of OLD) add(s, "old");
  PREVIEW.forEach((s, i) => {
    add(s, `pr-${101 + i}`);
  });
  const index = new Map(versions.map((v) => [`${v.service}\0${v.track}`, v.hash]));
  const byTrack = (service: string, track: string) =>
    index.get(`${service}\0${track}`) ?? (index.get(`${service}\0prod`) as string);
  const refsOf = new Map(
    versions.map((v) => [v.hash, (SERVICES[v.service] ?? []).map((d) => byTrack(d, v.track))]),
  );

  // This host (alpha) runs every prod, old and most staging versions; previews run on bravo,
  // part of staging on charlie (suspect), a replica set on delta (dead), echo runs prod's front.
  const manifest = (name: string) => parseManifest({ schema: 1, name, exec: [`/bin/${name}`] });
  const local = versions.filter(
    (v) => v.track === "prod" || v.track === "old" || STAGING.indexOf(v.service) < 5,
  );
  for (const v of local.filter((x) => x.track !== "staging" || STAGING.indexOf(x.service) < 5)) {
    if (v.track.startsWith("pr-")) continue;
    const d = store.beginActivation(
      `/nix/store/${v.hash}-${v.service}`,
      v.hash,
      manifest(v.service),
      "hashd activate",
      refsOf.get(v.hash) ?? [],
    );
    if (v.track === "staging" && v.service === "search") {
      store.transition(
        v.hash,
        d.generation,
        "failed",
        "readiness: process exited with status 1",
        "readiness: process exited with status 1\nsearch[4121]: error: index /var/lib/search/v7 is missing\nsearch[4121]: exiting",
      );
      continue;
    }
    store.transition(v.hash, d.generation, "ready", "readiness: accepted a probe connection");
    if (v.track === "old") {
      if (v.service === "web" || v.service === "api") {
        store.transition(v.hash, d.generation, "draining", "no alias, pin or wanted hash reaches it");
      } else {
        store.transition(v.hash, d.generation, "draining", "no alias, pin or wanted hash reaches it");
        store.transition(v.hash, d.generation, "retired", "quiet on every member");
      }
    }
    if (v.service === "metrics")
      store.transition(v.hash, d.generation, "idle", "scaled to zero after 300 s without requests");
  }
  // the retirer's noise: "kept" events, as the issue counted them
  const prodWeb = byTrack("web", "prod");
  for (let i = 0; store.events(undefined, 1000).length < 200; i++) {
    const v = versions[i % versions.length] as ScaleVersion;
    const dep = (refsOf.get(v.hash) ?? [])[0];
    if (!store.get(v.hash)) continue;
    store.event(v.hash, "kept", dep ? `referenced by ${dep}` : `wanted: alias prod reaches ${prodWeb}`);
  }

  const reasonOf = (v: ScaleVersion): string => {
    if (v.track === "prod" && v.service === "web") return "wanted: alias prod";
    if (v.track.startsWith("pr-") && PREVIEW.indexOf(v.service) >= 0) return `wanted: alias ${v.track}`;
    const caller = versions.find((c) => c.track === v.track && (refsOf.get(c.hash) ?? []).includes(v.hash));
    return caller ? `wanted: referenced by ${caller.hash}` : "wanted: alias staging";
  };
  const report = (v: ScaleVersion, state: HashReport["state"] = "ready"): HashReport => ({
    hash: v.hash,
    state,
    inFlight: 0,
    holds: 0,
    refs: refsOf.get(v.hash) ?? [],
    service: v.service,
    why: reasonOf(v),
  });
  const traffic = { on: true };
  let tick = 0;
  const moving = (v: ScaleVersion) =>
    traffic.on && v.track === "prod" ? (tick++ * 7 + v.hash.charCodeAt(3)) % 13 : 0;
  const withLoad = (r: HashReport, v: ScaleVersion): HashReport => ({ ...r, inFlight: moving(v) });
  const previews = versions.filter((v) => v.track.startsWith("pr-"));
  const remoteStaging = versions.filter((v) => v.track === "staging" && STAGING.indexOf(v.service) >= 5);
  const prodFront = versions.filter(
    (v) => v.track === "prod" && ["web", "api", "auth", "db-proxy"].includes(v.service),
  );

  const members: MemberLike[] = [
    { name: "alpha", address: "10.0.0.1:7946", state: "alive", incarnation: 3, lastContact: now },
    { name: "bravo", address: "10.0.0.2:7946", state: "alive", incarnation: 1, lastContact: now - 800 },
    { name: "charlie", address: "10.0.0.3:7946", state: "suspect", incarnation: 2, lastContact: now - 4200 },
    { name: "delta", address: "10.0.0.4:7946", state: "dead", incarnation: 5, lastContact: now - 95_000 },
    { name: "echo", address: "10.0.0.5:7946", state: "alive", incarnation: 1, lastContact: now - 300 },
  ];
  const reports = (): MemberReports[] => [
    { member: "bravo", hashes: previews.map((v) => report(v)) },
    { member: "charlie", hashes: remoteStaging.map((v) => report(v)) },
    { member: "delta", hashes: prodFront.map((v) => report(v)) },
    { member: "echo", hashes: prodFront.map((v) => withLoad(report(v), v)) },
  ];
  const stagingWeb = byTrack("web", "staging");
  const aliases: StatusAlias[] = [
    {
      name: "prod",
      hash: prodWeb,
      history: [
        { hash: prodWeb, at: now - 3_600_000, by: "alpha" },
        { hash: byTrack("web", "old"), at: now - 86_400_000, by: "bravo" },
      ],
    },
    {
      name: "staging",
      hash: prodWeb,
      history: [{ hash: stagingWeb, at: now - 600_000, by: "alpha" }],
      split: [
        { hash: prodWeb, weight: 75 },
        { hash: stagingWeb, weight: 25 },
      ],
      rollout: {
        kind: "rollout",
        from: prodWeb,
        to: stagingWeb,
        steps: [5, 25, 50, 100],
        step: 1,
        stepSince: now - 40_000,
        stepTimeMs: 60_000,
        intervalMs: 5_000,
        limits: { maxErrorRate: 0.01, maxP99Ratio: 1.5, minRequests: 200 },
        status: "running",
        note: "step 1 (25%) passed: 412 canary requests, error rate 0.2%, p99 31 ms vs 28 ms",
        startedAt: now - 200_000,
      },
    } as StatusAlias,
    ...previews.map((v) => ({
      name: v.track,
      hash: v.hash,
      history: [{ hash: v.hash, at: now - 1_000_000 + Number(v.track.slice(3)) * 1000, by: "bravo" }],
    })),
  ];
  const verdicts = new Map(
    versions.filter((v) => store.get(v.hash)).map((v) => [v.hash, { reason: reasonOf(v) }] as const),
  );
  for (const v of versions.filter((x) => x.track === "old"))
    verdicts.set(v.hash, {
      reason: `draining, kept: dependent ${byTrack(v.service === "web" ? "web" : "web", "old")} is draining on alpha`,
    });
  const providers: StatusProviders = {
    self: "alpha",
    zone: "hashd.test",
    members: () => members,
    reports,
    aliases: () => aliases,
    inFlight: (h) => {
      const v = versions.find((x) => x.hash === h);
      return v ? moving(v) : 0;
    },
    holds: () => 0,
    refs: (h) => refsOf.get(h) ?? [],
    verdicts: () => verdicts,
    eventLimit: 50,
  };
  return { versions, byTrack, refsOf, providers, traffic };
}
