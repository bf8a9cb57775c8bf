/**
 * The public vocabulary of the gossip layer: what a member reports, what the core tells its
 * driver, and what the driver feeds back. No behaviour here.
 */
import type { AliasRecord } from "../../model/alias-record.ts";

/** "ip:port" of a member's gossip endpoint (UDP for packets, TCP on the same port for streams). */
export type Address = string;

/**
 * Version of a member's app state: `boot` identifies the process lifetime (strictly larger after a
 * restart), `seq` counts updates within it. Ordered lexicographically; a report is only ever
 * replaced by a strictly greater version, so replays and stale copies change nothing.
 */
export interface StateVersion {
  boot: number;
  seq: number;
}

export type MemberStatus = "alive" | "suspect" | "dead" | "left";

export interface MemberInfo {
  name: string;
  address: Address;
  state: MemberStatus;
  incarnation: number;
  /** Boot id the member last announced (its current process lifetime). */
  boot: number;
  /** Last time (the core's `now`) an authenticated packet arrived from its address; 0 if never. */
  lastContact: number;
  /** When `state` last changed. */
  stateChangedAt: number;
  /** Version of the app state we hold for it; null until its state has arrived. */
  stateVersion: StateVersion | null;
}

export interface Identity {
  name: string;
  address: Address;
  /**
   * Boot id: must be strictly greater than any earlier boot of the same member name (the adapter
   * uses the wall clock in ms at start). It is the member's first incarnation and the first
   * component of its state versions, so a restarted member outranks everything its previous
   * process ever said. If it does not (clock stepped back), the core notices its old reports
   * coming back and bumps past them (as memberlist refutes).
   */
  boot: number;
}

export type GossipEvent =
  | {
      type: "member-alive" | "member-suspect" | "member-dead" | "member-left" | "member-reaped";
      member: MemberInfo;
    }
  | { type: "state-changed"; name: string; version: StateVersion | null }
  | { type: "alias-changed"; record: AliasRecord }
  | { type: "joined"; seed: Address; members: number }
  | { type: "join-failed"; seed: Address }
  | { type: "name-conflict"; name: string; address: Address }
  /**
   * A message claimed an incarnation (or boot id) for this member at the bound (LIMITS.clock):
   * it cannot be outranked, so this member does not refute it (membership.ts refute).
   */
  | { type: "incarnation-exhausted"; field: "incarnation" | "boot"; claimed: number; bound: number };

/**
 * Timers are plain data. The driver hands each one back through `handleTimer` after the delay;
 * the core never cancels one: a timer whose token no longer matches is stale and ignored.
 */
export type Timer =
  | { kind: "probe"; token: number }
  | { kind: "probe-timeout"; seq: number }
  | { kind: "gossip"; token: number }
  | { kind: "gossip-eager" }
  | { kind: "push-pull"; token: number }
  | { kind: "push-pull-once" }
  | { kind: "suspicion"; name: string; token: number }
  | { kind: "relay-nack"; seq: number }
  | { kind: "relay-timeout"; seq: number }
  | { kind: "reconnect"; token: number }
  | { kind: "publish-state"; token: number }
  | { kind: "stream-timeout"; token: number };

/** Everything that leaves the core. Implemented by the UDP/TCP adapter and by the simulator. */
export interface Runtime {
  /** Send one plaintext packet (the adapter seals it) to a member's address. */
  send(to: Address, packet: Uint8Array): void;
  /** Call `handleTimer(timer)` after `afterMs`. */
  schedule(afterMs: number, timer: Timer): void;
  /**
   * Open a stream to `to`, send `request`, and hand the one reply back through
   * `handleStreamResponse(token, reply)`, or `handleStreamFailure(token)` if it fails.
   */
  openStream(to: Address, request: Uint8Array, token: number): void;
  notify(event: GossipEvent): void;
}

/** Counters; every dropped input is counted somewhere here. */
export interface GossipStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Packets or stream messages that did not decode to a valid message (after opening). */
  decodeErrors: number;
  /** Broadcasts skipped undecoded because the same bytes were already processed. */
  duplicates: number;
  /** Acks whose sequence number was not outstanding (late, replayed or forged). */
  staleAcks: number;
  /** Nacks for a probe not outstanding or from a member we did not ask. */
  staleNacks: number;
  /** Pings addressed to another member name (address reuse). */
  misaddressedPings: number;
  /** State reports not newer than the one held (stale or replayed). */
  staleStates: number;
  /** Alias records refused (clock too far ahead). */
  rejectedAliases: number;
  refutations: number;
  streamsOpened: number;
  streamFailures: number;
  /** Fallback pings refused (nothing listening): the probe suspected its target at once. */
  refusedPings: number;
  /** Broadcasts dropped from a full queue before reaching their retransmit limit. */
  broadcastsPruned: number;
  /** Push-pull exchanges merged (either side): each brought the peer's whole alias table. */
  pushPullsMerged: number;
}
