/**
 * Wire messages (plaintext, before sealing). Each message is a msgpack array whose first element
 * is its type code; fields are positional to keep packets small. A UDP packet is a msgpack array
 * of messages: usually one direct message (ping, ack, ...) followed by piggybacked broadcasts.
 * A stream carries one request and one reply message.
 *
 *   1 ping      [1, seq, toName]
 *   2 ack       [2, seq, fromName, incarnation, boot]
 *   3 nack      [3, seq]
 *   4 ping-req  [4, seq, targetName, targetAddr, wantNack]
 *  10 alive     [10, name, addr, incarnation, boot]          or, with its owner's small state:
 *               [10, name, addr, incarnation, boot, stateBoot, stateSeq, appState]
 *  11 suspect   [11, name, incarnation, fromName]
 *  12 dead      [12, name, incarnation, fromName]       fromName == name: a graceful leave
 *  13 state     [13, name, boot, seq, appState]
 *  14 state-ver [14, name, boot, seq]                    "fetch it from me"
 *  15 alias     [15, origin, hlcWall, hlcLogical, [entry, ...]]
 *  20 push-pull [20, join, fromName, fromAddr, members, aliases, states]
 *  21 fetch     [21, [name, ...]]
 *  22 states    [22, states]
 *  (a stream may also carry a ping and its ack: the TCP fallback probe)
 *
 *  appState = [[[hash, stateCode, inFlight, holds, [ref, ...]], ...], ingress | nil]
 *  member   = [name, addr, incarnation, statusCode, boot, stateBoot, stateSeq]  (0, 0: no state held)
 *  entry    = [aliasName, hash | nil] or [aliasName, hash | nil, [previousHash, ...]]
 *  alias    = [aliasName, hash | nil, hlcWall, hlcLogical, origin] or [..., origin, [previousHash, ...]]
 *  state    = [name, boot, seq, appState]
 */

import type { AliasRecord } from "../../../model/alias-record.ts";
import type { Hlc } from "../../../model/hlc.ts";
import type { MemberAppState } from "../../../model/reports.ts";
import type { MemberStatus, StateVersion } from "../types.ts";
import type { AliasEntry } from "./codec-fields.ts";

export const T = {
  ping: 1,
  ack: 2,
  nack: 3,
  pingReq: 4,
  alive: 10,
  suspect: 11,
  dead: 12,
  state: 13,
  stateVer: 14,
  alias: 15,
  pushPull: 20,
  fetch: 21,
  states: 22,
} as const;

export interface Ping {
  t: typeof T.ping;
  seq: number;
  to: string;
}
export interface Ack {
  t: typeof T.ack;
  seq: number;
  from: string;
  /** The acking member's incarnation and boot: a refutation that gossip may not have delivered. */
  inc: number;
  boot: number;
}
export interface Nack {
  t: typeof T.nack;
  seq: number;
}
export interface PingReq {
  t: typeof T.pingReq;
  seq: number;
  target: string;
  targetAddr: string;
  nack: boolean;
}
export interface Alive {
  t: typeof T.alive;
  name: string;
  addr: string;
  inc: number;
  boot: number;
  /** The member's state, when its owner sends it along (small states only). */
  state?: { version: StateVersion; state: MemberAppState };
}
export interface Suspect {
  t: typeof T.suspect;
  name: string;
  inc: number;
  from: string;
}
export interface Dead {
  t: typeof T.dead;
  name: string;
  inc: number;
  from: string;
}
export interface StateMsg {
  t: typeof T.state;
  name: string;
  version: StateVersion;
  state: MemberAppState;
}
export interface StateVer {
  t: typeof T.stateVer;
  name: string;
  version: StateVersion;
}
export interface AliasMsg {
  t: typeof T.alias;
  origin: string;
  hlc: Hlc;
  entries: AliasEntry[];
}

export type PacketMessage =
  | Ping
  | Ack
  | Nack
  | PingReq
  | Alive
  | Suspect
  | Dead
  | StateMsg
  | StateVer
  | AliasMsg;
export type BroadcastMessage = Alive | Suspect | Dead | StateMsg | StateVer | AliasMsg;

export interface PushPullMember {
  name: string;
  addr: string;
  inc: number;
  status: MemberStatus;
  boot: number;
  /** Version of the full state the sender holds for this member, if any. */
  version: StateVersion | null;
}

export interface FullState {
  name: string;
  version: StateVersion;
  state: MemberAppState;
}

export interface PushPull {
  t: typeof T.pushPull;
  join: boolean;
  from: string;
  fromAddr: string;
  members: PushPullMember[];
  aliases: AliasRecord[];
  states: FullState[];
}
export interface Fetch {
  t: typeof T.fetch;
  names: string[];
}
export interface States {
  t: typeof T.states;
  states: FullState[];
}

/** Streams also carry a ping and its ack: memberlist's TCP fallback probe. */
export type StreamMessage = PushPull | Fetch | States | Ping | Ack;

export const STATUS_CODES: readonly MemberStatus[] = ["alive", "suspect", "dead", "left"];
