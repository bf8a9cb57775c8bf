/**
 * Incoming packets: split, skip broadcasts already processed, decode the rest (all or nothing),
 * then apply membership news before everything else.
 */

import { onAliasMessage } from "../sync/push-pull.ts";
import { applyState, flushFetches, noteVersion } from "../sync/state-sync.ts";
import type { Address } from "../types.ts";
import { decodePacketMessage, messageType, splitPacket } from "../wire/codec.ts";
import { type PacketMessage, T } from "../wire/messages.ts";
import type { SeenCache } from "../wire/seen-cache.ts";
import type { NodeContext } from "./context.ts";
import { aliveNode, deadNode, suspectNode } from "./membership.ts";
import { onAck, onNack, onPing, onPingReq } from "./probe.ts";

/** A decoded message and where its bytes lie in the packet (for the seen-cache). */
interface Decoded {
  m: PacketMessage;
  start: number;
  end: number;
}

/**
 * Broadcasts skipped when seen before. Not suspect and dead: a stale copy of one must still be
 * looked at, to correct its sender (membership.ts correct()).
 */
const dedupable = (t: number): boolean => t === T.alive || t >= T.state;

/** One opened (plaintext) UDP packet from `from`. Invalid packets are counted and dropped. */
export const handlePacket = (ctx: NodeContext, seen: SeenCache, from: Address, bytes: Uint8Array): void => {
  ctx.stats.packetsIn++;
  ctx.stats.bytesIn += bytes.length;
  const split = splitPacket(bytes, ctx.config.maxPacketBytes);
  if (!split.ok) {
    ctx.stats.decodeErrors++;
    return;
  }
  // Decode everything before acting on anything: one invalid message drops the whole packet.
  // Broadcasts already processed (same bytes) are skipped undecoded.
  const o = split.value;
  const msgs: Decoded[] = [];
  for (let i = 0; i + 1 < o.length; i++) {
    const start = o[i] as number;
    const end = o[i + 1] as number;
    if (dedupable(messageType(bytes, start)) && seen.has(bytes, start, end)) {
      ctx.stats.duplicates++;
      continue;
    }
    const m = decodePacketMessage(bytes.subarray(start, end));
    if (m === null) {
      ctx.stats.decodeErrors++;
      return;
    }
    msgs.push({ m, start, end });
  }
  const sender = ctx.members.byAddress(from);
  if (sender !== undefined) sender.lastContact = ctx.now;
  // Membership news first, so a state report riding behind the alive of a new member applies.
  for (const x of msgs) if (x.m.t >= T.alive && x.m.t <= T.dead) dispatch(ctx, seen, from, x, bytes);
  for (const x of msgs) if (x.m.t < T.alive || x.m.t > T.dead) dispatch(ctx, seen, from, x, bytes);
  flushFetches(ctx);
};

const dispatch = (ctx: NodeContext, seen: SeenCache, from: Address, x: Decoded, packet: Uint8Array): void => {
  const m = x.m;
  let settled = true;
  switch (m.t) {
    case T.ping:
      onPing(ctx, from, m);
      return;
    case T.ack:
      onAck(ctx, m);
      return;
    case T.nack:
      onNack(ctx, from, m);
      return;
    case T.pingReq:
      onPingReq(ctx, from, m);
      return;
    case T.alive:
      aliveNode(ctx, m);
      break;
    case T.suspect:
      settled = suspectNode(ctx, m, from);
      break;
    case T.dead:
      settled = deadNode(ctx, m, from);
      break;
    case T.state:
      settled = applyState(ctx, m.name, m.version, m.state, true);
      break;
    case T.stateVer:
      settled = noteVersion(ctx, m.name, m.version, from, true);
      break;
    case T.alias:
      settled = onAliasMessage(ctx, m);
      break;
  }
  if (settled && dedupable(m.t)) seen.add(packet, x.start, x.end);
};
