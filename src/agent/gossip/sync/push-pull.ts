/**
 * Push-pull: anti-entropy over a stream (memberlist pushPullNode / mergeState). The requester
 * sends its member list, with the version of each member's state it holds, and all aliases; the
 * responder answers with the same, plus the full states the requester is missing. Each side then
 * merges, and fetches from the other any state the other holds newer (the requester's newer
 * states are not pushed inline, to keep requests small: the responder pulls them).
 *
 * Reaped members are still listed, as dead, while their tombstone lasts. That is what lets a
 * healed partition converge: a member that learns the other side thinks it dead refutes, and its
 * refutation spreads by gossip (memberlist alone relies on Serf's reconnect for this).
 */

import type { AliasRecord } from "../../../model/alias-record.ts";
import { copyAliasRecord } from "../../../model/alias-table.ts";
import type { NodeContext } from "../swim/context.ts";
import { aliveNode, deadNode, suspectNode } from "../swim/membership.ts";
import type { StateVersion } from "../types.ts";
import { encodeMessage } from "../wire/codec.ts";
import { aliasEntryOf } from "../wire/codec-fields.ts";
import {
  type AliasMsg,
  type Alive,
  type FullState,
  type PushPull,
  type PushPullMember,
  T,
} from "../wire/messages.ts";
import { isNewer } from "./app-state.ts";
import { applyState, flushFetches, noteVersion } from "./state-sync.ts";

export const buildPushPull = (
  ctx: NodeContext,
  join: boolean,
  peerHolds: ReadonlyMap<string, StateVersion | null> | null,
): PushPull => {
  const members: PushPullMember[] = [];
  const states: FullState[] = [];
  for (const m of ctx.members.all()) {
    members.push({
      name: m.name,
      addr: m.addr,
      inc: m.inc,
      status: m.status,
      boot: m.boot,
      version: m.version,
    });
    if (m.version === null || m.app === null) continue;
    // A request carries only our own state (so the responder can gossip us whole if we are new
    // to it); a reply carries every state the requester lacks.
    const send = peerHolds === null ? m === ctx.self : isNewer(m.version, peerHolds.get(m.name) ?? null);
    if (send) states.push({ name: m.name, version: m.version, state: m.app });
  }
  for (const [name, t] of ctx.members.buried()) {
    members.push({
      name,
      addr: t.addr,
      inc: t.inc,
      status: t.left ? "left" : "dead",
      boot: t.boot,
      version: null,
    });
  }
  const self = ctx.self;
  return {
    t: T.pushPull,
    join,
    from: self.name,
    fromAddr: self.addr,
    members,
    aliases: ctx.aliases.all(),
    states,
  };
};

/** Encode a push-pull; if it exceeds the stream bound, drop the inline states (they can be fetched). */
export const encodePushPull = (ctx: NodeContext, msg: PushPull): Uint8Array => {
  const bytes = encodeMessage(msg);
  if (bytes.length <= ctx.config.maxStreamBytes || msg.states.length === 0) return bytes;
  return encodeMessage({ ...msg, states: [] });
};

export const mergePushPull = (ctx: NodeContext, msg: PushPull): void => {
  for (const r of msg.members) {
    switch (r.status) {
      case "alive": {
        const a: Alive = { t: T.alive, name: r.name, addr: r.addr, inc: r.inc, boot: r.boot };
        if (r.name !== msg.from) {
          aliveNode(ctx, a, "quiet");
          break;
        }
        // The peer itself: news of it is gossiped, with its state when that is small.
        const own = msg.states.find((s) => s.name === msg.from);
        if (own !== undefined) {
          const withState: Alive = { ...a, state: { version: own.version, state: own.state } };
          if (encodeMessage(withState).length <= ctx.config.maxInlineStateBytes) a.state = withState.state;
        }
        aliveNode(ctx, a, "gossip");
        break;
      }
      case "left":
        deadNode(ctx, { t: T.dead, name: r.name, inc: r.inc, from: r.name });
        break;
      default:
        // Another member's "dead" becomes our suspicion, not our verdict (memberlist mergeState):
        // the member gets a chance to refute before we declare it.
        suspectNode(ctx, { t: T.suspect, name: r.name, inc: r.inc, from: ctx.self.name });
    }
  }
  for (const s of msg.states) applyState(ctx, s.name, s.version, s.state, false);
  for (const r of msg.members) {
    if (r.version !== null && (r.status === "alive" || r.status === "suspect")) {
      noteVersion(ctx, r.name, r.version, msg.fromAddr, false);
    }
  }
  mergeAliases(ctx, msg.aliases);
  ctx.stats.pushPullsMerged++;
  flushFetches(ctx);
};

/** Merge alias records; those that win here are re-gossiped, grouped as they were written. */
const mergeAliases = (ctx: NodeContext, records: readonly AliasRecord[]): void => {
  const groups = new Map<string, AliasMsg>();
  for (const r of records) {
    if (!ctx.aliases.observe(r.hlc, ctx.now, ctx.config.hlcMaxDriftMs)) {
      ctx.stats.rejectedAliases++;
      continue;
    }
    if (!ctx.aliases.apply(r)) continue;
    ctx.emit({ type: "alias-changed", record: copyAliasRecord(r) });
    const key = `${r.origin}:${r.hlc.wall}:${r.hlc.logical}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = { t: T.alias, origin: r.origin, hlc: r.hlc, entries: [] };
      groups.set(key, g);
    }
    g.entries.push(aliasEntryOf(r));
  }
  for (const msg of groups.values()) broadcastAliases(ctx, msg);
};

/**
 * The queue key of an alias write (or of one part of it): parts of a write are disjoint, so their
 * first names tell them apart, and a part received is re-gossiped under the key it was sent with.
 */
const aliasKey = (msg: AliasMsg): string =>
  `a:${msg.origin}:${msg.hlc.wall}:${msg.hlc.logical}:${msg.entries[0]?.name ?? ""}`;

/** Room a packet keeps for its direct message (a ping-req, an ack) besides piggybacked broadcasts. */
const DIRECT_MESSAGE_ROOM = 256;

/**
 * Queue an alias write: one broadcast, so a member applies it whole, unless it is too large to
 * ride in a packet (many aliases with long histories): then in as few parts as fit, each applied
 * as it arrives. A broadcast larger than a packet would never leave the queue.
 */
export const broadcastAliases = (ctx: NodeContext, msg: AliasMsg): void => {
  const room = ctx.config.maxPacketBytes - DIRECT_MESSAGE_ROOM;
  const whole = encodeMessage(msg);
  if (whole.length <= room || msg.entries.length === 1) {
    ctx.broadcastBytes(aliasKey(msg), whole);
    return;
  }
  let part: AliasMsg = { ...msg, entries: [] };
  for (const e of msg.entries) {
    const bigger: AliasMsg = { ...part, entries: [...part.entries, e] };
    if (part.entries.length > 0 && encodeMessage(bigger).length > room) {
      ctx.broadcast(aliasKey(part), part);
      part = { ...msg, entries: [e] };
    } else {
      part = bigger;
    }
  }
  ctx.broadcast(aliasKey(part), part);
};

/**
 * A gossiped alias write: merged record by record, re-gossiped if any record won. Returns false
 * if refused for a clock too far ahead (it may be acceptable later).
 */
export const onAliasMessage = (ctx: NodeContext, msg: AliasMsg): boolean => {
  if (!ctx.aliases.observe(msg.hlc, ctx.now, ctx.config.hlcMaxDriftMs)) {
    ctx.stats.rejectedAliases++;
    return false;
  }
  let won = false;
  for (const e of msg.entries) {
    const { name, hash, previous, ...extras } = e;
    const record: AliasRecord = { name, hash, hlc: msg.hlc, origin: msg.origin, previous, ...extras };
    if (!ctx.aliases.apply(record)) continue;
    won = true;
    ctx.emit({ type: "alias-changed", record: copyAliasRecord(record) });
  }
  if (won) ctx.broadcast(aliasKey(msg), msg);
  return true;
};
