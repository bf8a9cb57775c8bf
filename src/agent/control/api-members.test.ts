import { expect, test } from "bun:test";
import { inertActivator } from "../../../test/fakes/inert-activator.ts";
import { membersText } from "../../cli/members.ts";
import type { MemberAppState } from "../../model/reports.ts";
import { renderGossipMetrics } from "../cluster/gossip-metrics.ts";
import type { MemberInfo } from "../gossip/types.ts";
import { StateStore } from "../state/store.ts";
import { controlApi } from "./api.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";

const info = (name: string, state: MemberInfo["state"], lastContact: number): MemberInfo => ({
  name,
  address: `10.0.0.${name.charCodeAt(0) - 96}:7946`,
  state,
  incarnation: 1000 + name.charCodeAt(0),
  boot: 1000,
  lastContact,
  stateChangedAt: 500,
  stateVersion: { boot: 1000, seq: 2 },
});

const states: Record<string, MemberAppState> = {
  a: { hashes: [], ingress: "10.0.0.1:8480" },
  b: { hashes: [{ hash: H, state: "ready", inFlight: 2, holds: 0, refs: [] }], ingress: "10.0.0.2:8480" },
};

const cluster = {
  self: "a",
  memberInfos: () => [info("a", "alive", 0), info("b", "alive", 9_000), info("c", "dead", 4_000)],
  memberState: (name: string) => states[name] ?? null,
};

function api(withCluster: boolean) {
  const store = new StateStore(":memory:");
  const activator = inertActivator(store);
  return controlApi({ store, activator, version: "t", ...(withCluster ? { cluster } : {}) }, () => {});
}

test("GET /v1/members lists every member with state, incarnation, last contact and its hashes", async () => {
  const r = await api(true).request("/v1/members");
  expect(r.status).toBe(200);
  const body = (await r.json()) as { self: string; members: Record<string, unknown>[] };
  expect(body.self).toBe("a");
  expect(body.members.map((m) => [m.name, m.state, m.self])).toEqual([
    ["a", "alive", true],
    ["b", "alive", false],
    ["c", "dead", false],
  ]);
  expect(body.members[1]).toMatchObject({
    incarnation: 1098,
    lastContact: 9_000,
    ingress: "10.0.0.2:8480",
    hashes: [{ hash: H, state: "ready", inFlight: 2 }],
  });
  expect(body.members[2]).toMatchObject({ ingress: null, hashes: [] });
  expect((await api(false).request("/v1/members")).status).toBe(404);
});

test("hashd members prints one line per member, this one starred", () => {
  const members = cluster.memberInfos().map((m) => ({
    ...m,
    self: m.name === "a",
    ingress: null,
    hashes: cluster.memberState(m.name)?.hashes ?? [],
  }));
  const text = membersText({ self: "a", members }, 10_000);
  expect(text.split("\n")).toEqual([
    "MEMBER  ADDRESS        STATE  INCARNATION  LAST CONTACT  HASHES",
    "a *     10.0.0.1:7946  alive  1097         -             0",
    "b       10.0.0.2:7946  alive  1098         1s ago        1",
    "c       10.0.0.3:7946  dead   1099         6s ago        0",
  ]);
  expect(membersText({ self: "solo", members: [] })).toContain("runs alone");
});

test("gossip metrics: members by state, per-member gauges, traffic and drop counters", () => {
  const zero = {
    packetsIn: 7,
    packetsOut: 9,
    bytesIn: 700,
    bytesOut: 900,
    decodeErrors: 1,
    duplicates: 2,
    staleAcks: 3,
    staleNacks: 0,
    misaddressedPings: 0,
    staleStates: 4,
    rejectedAliases: 0,
    refutations: 0,
    streamsOpened: 1,
    streamFailures: 0,
    refusedPings: 0,
    broadcastsPruned: 0,
    oversized: 5,
    unopened: 6,
    streamsServed: 1,
    streamsRefused: 0,
    socketErrors: 0,
    handlerErrors: 0,
    pushPullsMerged: 0,
    queueDepth: 0,
    sealed: 10,
    opened: 8,
  };
  const text = renderGossipMetrics({
    self: "a",
    members: cluster.memberInfos(),
    stats: zero,
    healthScore: 0,
    now: 10_000,
  });
  const lines = text.split("\n");
  for (const l of [
    'hashd_gossip_members{state="alive"} 2',
    'hashd_gossip_members{state="dead"} 1',
    'hashd_gossip_members{state="suspect"} 0',
    'hashd_gossip_member_state{member="c",address="10.0.0.3:7946",state="dead"} 1',
    'hashd_gossip_member_incarnation{member="b"} 1098',
    'hashd_gossip_member_last_contact_seconds{member="b"} 1',
    "hashd_gossip_packets_received_total 7",
    "hashd_gossip_bytes_sent_total 900",
    'hashd_gossip_dropped_total{reason="unopened"} 6',
    'hashd_gossip_dropped_total{reason="oversized"} 5',
    'hashd_gossip_dropped_total{reason="stale_state"} 4',
  ]) {
    expect(lines).toContain(l);
  }
  // one HELP and TYPE per family
  const types = lines.filter((l) => l.startsWith("# TYPE"));
  expect(new Set(types).size).toBe(types.length);
});
