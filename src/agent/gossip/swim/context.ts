/**
 * The state one GossipNode shares between its parts (membership, failure detector,
 * dissemination, state sync), and the two ways anything leaves it: a direct packet with
 * piggybacked broadcasts, and a queued broadcast. Internal to the gossip folder.
 */

import type { Rng } from "../../../lib/prng.ts";
import { AliasTable } from "../../../model/alias-table.ts";
import type { MemberAppState } from "../../../model/reports.ts";
import type { GossipConfig } from "../config.ts";
import { HashIndex } from "../sync/app-state.ts";
import type { Address, GossipEvent, GossipStats, Identity, Runtime, StateVersion, Timer } from "../types.ts";
import { assemblePacket, encodeMessage, packetOverhead } from "../wire/codec.ts";
import type { BroadcastMessage, PacketMessage } from "../wire/messages.ts";
import { Awareness } from "./awareness.ts";
import { BroadcastQueue } from "./broadcast-queue.ts";
import { type Member, MemberTable } from "./members.ts";
import { retransmitLimit } from "./scaling.ts";

export const newStats = (): GossipStats => ({
  packetsIn: 0,
  packetsOut: 0,
  bytesIn: 0,
  bytesOut: 0,
  decodeErrors: 0,
  duplicates: 0,
  staleAcks: 0,
  staleNacks: 0,
  misaddressedPings: 0,
  staleStates: 0,
  rejectedAliases: 0,
  refutations: 0,
  streamsOpened: 0,
  streamFailures: 0,
  refusedPings: 0,
  broadcastsPruned: 0,
  pushPullsMerged: 0,
});

export interface ProbeState {
  seq: number;
  target: Member;
  /** The incarnation probed: a suspicion raised by this probe is about it, not a later one. */
  inc: number;
  /** "round": the probe of this probe interval; "recheck": a suspect's last-chance probe (recheck.ts). */
  kind: "round" | "recheck";
  acked: boolean;
  /** Highest (incarnation, boot) an ack reported. */
  ackInc: number;
  ackBoot: number;
  helpers: Address[];
  nackFrom: Set<Address>;
}

export interface Relay {
  origSeq: number;
  requester: Address;
  target: string;
  /** The requester wants a nack if the target stays silent; false once it was sent. */
  nack: boolean;
}

export type PendingStream =
  | { kind: "push-pull"; to: Address; join: boolean }
  | { kind: "fetch"; to: Address; names: string[] }
  | { kind: "ping"; to: Address; seq: number; target: string };

export interface Want {
  version: StateVersion;
  sources: Address[];
  tried: Set<Address>;
  /** Gossip it on once fetched (it was announced by gossip, not found by push-pull). */
  announce: boolean;
}

export class NodeContext {
  readonly members = new MemberTable();
  readonly queue = new BroadcastQueue();
  readonly awareness: Awareness;
  readonly stats = newStats();
  readonly aliases = new AliasTable();
  readonly index = new HashIndex();
  readonly self: Member;
  now: number;
  leaving = false;

  probe: ProbeState | null = null;
  /** The last claim about us we could not outrank (membership.ts exhausted), told once. */
  exhaustedClaim = "";
  readonly relays = new Map<number, Relay>();
  readonly streams = new Map<number, PendingStream>();
  /** Members whose newer state we know of but do not hold yet, and where to fetch it. */
  readonly wants = new Map<string, Want>();
  /** Last-chance probes of suspects under way, by sequence number (they run beside `probe`). */
  readonly rechecks = new Map<number, ProbeState>();
  /** Addresses given to join(): tried again while we know no one, and by reconnect (reconnect.ts). */
  readonly seeds = new Set<Address>();
  readonly fetching = new Set<string>();
  /** State reports for members not known yet (state-sync.ts keepOrphan). */
  readonly orphans = new Map<string, { version: StateVersion; state: MemberAppState; announce: boolean }>();
  /** Our own state version counter within this boot. */
  localSeq = 0;
  lastPublishAt = Number.NEGATIVE_INFINITY;
  publishPending = false;
  /** Our own "state-ver", encoded once per version, for pings and acks (state-sync.ts). */
  digest: (StateVersion & { bytes: Uint8Array }) | undefined;

  /** When we last sent a correction to (address, member): membership.ts correct(). */
  readonly corrections = new Map<string, number>();
  /** Fetch streams open (bounded by maxConcurrentFetches). */
  openFetches = 0;

  probeToken = 0;
  reconnectToken = 0;
  gossipToken = 0;
  /** When the last gossip round (regular or eager) ran, and whether an eager one is scheduled. */
  lastGossipAt = Number.NEGATIVE_INFINITY;
  eagerGossipPending = false;
  pushPullToken = 0;
  publishToken = 0;
  private seq: number;
  private token = 0;

  constructor(
    readonly config: GossipConfig,
    identity: Identity,
    readonly rng: Rng,
    readonly runtime: Runtime,
    now: number,
  ) {
    this.now = now;
    this.awareness = new Awareness(config.awarenessMaxMultiplier);
    // A random first sequence number: acks from a previous process of ours are not outstanding.
    this.seq = rng.nextU32();
    this.self = {
      name: identity.name,
      addr: identity.address,
      inc: identity.boot,
      boot: identity.boot,
      status: "alive",
      stateChangedAt: now,
      lastContact: now,
      suspicion: null,
      version: null,
      app: null,
    };
    this.members.add(this.self, rng);
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  nextToken(): number {
    return ++this.token;
  }

  schedule(afterMs: number, timer: Timer): void {
    this.runtime.schedule(Math.max(0, afterMs), timer);
  }

  emit(event: GossipEvent): void {
    this.runtime.notify(event);
  }

  isSelf(name: string): boolean {
    return name === this.self.name;
  }

  /** memberlist's retransmit limit for the current cluster size. */
  retransmitLimit(): number {
    return retransmitLimit(this.config.retransmitMult, this.members.size);
  }

  /** Queue a broadcast; a newer one with the same key replaces it (keys name the subject). */
  broadcast(key: string, msg: BroadcastMessage): void {
    this.broadcastBytes(key, encodeMessage(msg));
  }

  broadcastBytes(key: string, bytes: Uint8Array): void {
    this.queue.enqueue(key, bytes);
    const cap = Math.max(this.config.maxQueueDepth, 2 * this.members.size);
    if (this.queue.size > cap) this.stats.broadcastsPruned += this.queue.prune(cap);
    const eager = this.config.eagerGossipMs;
    if (eager > 0 && !this.eagerGossipPending) {
      this.eagerGossipPending = true;
      const gapLeft = this.lastGossipAt + this.config.eagerGossipGapMs - this.now;
      this.schedule(Math.max(eager, gapLeft), { kind: "gossip-eager" });
    }
  }

  /**
   * Send a direct message (and any `extra` encoded messages that must ride with it) to `to`,
   * filling the rest of the packet with pending broadcasts. `primary` null: broadcasts only.
   * Returns false if there was nothing to send.
   */
  send(to: Address, primary: PacketMessage | null, extra: readonly Uint8Array[] = []): boolean {
    const parts: Uint8Array[] = [];
    let used = packetOverhead(64);
    if (primary !== null) {
      const bytes = encodeMessage(primary);
      parts.push(bytes);
      used += bytes.length;
    }
    for (const e of extra) {
      parts.push(e);
      used += e.length;
    }
    const piggyback = this.queue.take(this.config.maxPacketBytes - used, this.retransmitLimit());
    for (const p of piggyback) parts.push(p);
    if (parts.length === 0) return false;
    const packet = assemblePacket(parts);
    this.stats.packetsOut++;
    this.stats.bytesOut += packet.length;
    this.runtime.send(to, packet);
    return true;
  }
}
