/**
 * The gossip layer's Prometheus metrics, appended to the agent's /metrics: members by state, each
 * member's incarnation and time since last contact, and the adapter's and core's counters (packets
 * and bytes, and every input dropped: unopened, oversized, undecodable, stale, duplicate).
 * Written with the same exposition helper as the ingress's metrics (src/lib/prometheus.ts).
 */

import { family } from "../../lib/prometheus.ts";
import type { AdapterStats, GossipStats, MemberInfo, MemberStatus } from "../gossip/index.ts";

export interface GossipMetricsView {
  self: string;
  members: MemberInfo[];
  stats: GossipStats & AdapterStats & { queueDepth: number; sealed: number; opened: number };
  healthScore: number;
  now: number;
}

const STATES: readonly MemberStatus[] = ["alive", "suspect", "dead", "left"];

export function renderGossipMetrics(v: GossipMetricsView): string {
  const out: string[] = [];
  const s = v.stats;
  const byState = new Map<MemberStatus, number>(STATES.map((st) => [st, 0]));
  for (const m of v.members) byState.set(m.state, (byState.get(m.state) ?? 0) + 1);
  const others = v.members.filter((m) => m.name !== v.self);
  family(
    out,
    "hashd_gossip_members",
    "gauge",
    "Members this agent knows, itself included, by state.",
    STATES.map((st) => [{ state: st }, byState.get(st) ?? 0]),
  );
  family(
    out,
    "hashd_gossip_member_state",
    "gauge",
    "1 for each other member in the state this agent sees it in.",
    others.map((m) => [{ member: m.name, address: m.address, state: m.state }, 1]),
  );
  family(
    out,
    "hashd_gossip_member_incarnation",
    "gauge",
    "Incarnation number of each member (a refutation raises it).",
    v.members.map((m) => [{ member: m.name }, m.incarnation]),
  );
  family(
    out,
    "hashd_gossip_member_last_contact_seconds",
    "gauge",
    "Seconds since an authenticated packet last arrived from each other member (-1: never).",
    others.map((m) => [{ member: m.name }, m.lastContact > 0 ? (v.now - m.lastContact) / 1000 : -1]),
  );
  family(out, "hashd_gossip_health_score", "gauge", "Lifeguard local health score (0 = healthy).", [
    [{}, v.healthScore],
  ]);
  family(out, "hashd_gossip_broadcast_queue", "gauge", "Broadcasts waiting to be piggybacked.", [
    [{}, s.queueDepth],
  ]);
  const counters: [string, string, number][] = [
    ["hashd_gossip_packets_sent_total", "UDP packets sent (plaintext, before sealing).", s.packetsOut],
    ["hashd_gossip_packets_received_total", "UDP packets opened and handed to the protocol.", s.packetsIn],
    ["hashd_gossip_bytes_sent_total", "Plaintext bytes of the UDP packets sent.", s.bytesOut],
    ["hashd_gossip_bytes_received_total", "Plaintext bytes of the UDP packets opened.", s.bytesIn],
    ["hashd_gossip_sealed_total", "Packets and stream frames sealed with the cluster key.", s.sealed],
    ["hashd_gossip_opened_total", "Packets and stream frames opened with a key of the keyring.", s.opened],
    ["hashd_gossip_refutations_total", "Suspicions of this member it refuted.", s.refutations],
    [
      "hashd_gossip_streams_opened_total",
      "Streams opened (push-pull, state fetch, fallback ping).",
      s.streamsOpened,
    ],
    ["hashd_gossip_stream_failures_total", "Streams that failed or timed out.", s.streamFailures],
    [
      "hashd_gossip_refused_pings_total",
      "Fallback pings refused by the target's host (its agent not running): suspected at once.",
      s.refusedPings,
    ],
    ["hashd_gossip_streams_served_total", "Stream requests answered.", s.streamsServed],
    ["hashd_gossip_socket_errors_total", "Send failures and ICMP errors on the UDP socket.", s.socketErrors],
    [
      "hashd_gossip_handler_errors_total",
      "Exceptions caught in socket handlers (should stay 0).",
      s.handlerErrors,
    ],
  ];
  for (const [name, help, value] of counters) family(out, name, "counter", help, [[{}, value]]);
  family(
    out,
    "hashd_gossip_dropped_total",
    "counter",
    "Inputs dropped, by reason: unopened (no key opens it), oversized, decode (opened but invalid), " +
      "stream_refused, duplicate (a broadcast already seen), stale_ack, stale_nack, stale_state, " +
      "misaddressed_ping, rejected_alias, broadcast_pruned (a full queue dropped it).",
    [
      [{ reason: "unopened" }, s.unopened],
      [{ reason: "oversized" }, s.oversized],
      [{ reason: "decode" }, s.decodeErrors],
      [{ reason: "stream_refused" }, s.streamsRefused],
      [{ reason: "duplicate" }, s.duplicates],
      [{ reason: "stale_ack" }, s.staleAcks],
      [{ reason: "stale_nack" }, s.staleNacks],
      [{ reason: "stale_state" }, s.staleStates],
      [{ reason: "misaddressed_ping" }, s.misaddressedPings],
      [{ reason: "rejected_alias" }, s.rejectedAliases],
      [{ reason: "broadcast_pruned" }, s.broadcastsPruned],
    ],
  );
  return out.join("");
}
