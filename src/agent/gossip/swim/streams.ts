/**
 * Stream exchanges (TCP in production): push-pull (on join, periodically, to reconnect), state
 * fetches, and the fallback ping. The peer answers a request with one reply; our own requests
 * are tracked by token until their reply, failure or timeout.
 */

import { randomInt } from "../../../lib/prng.ts";
import { buildPushPull, encodePushPull, mergePushPull } from "../sync/push-pull.ts";
import { fetchDone, heldStates, openStream } from "../sync/state-sync.ts";
import type { Address } from "../types.ts";
import { encodeMessage } from "../wire/codec.ts";
import { decodeStream } from "../wire/codec-stream.ts";
import { T } from "../wire/messages.ts";
import type { NodeContext } from "./context.ts";
import { onAck, onPingRefused } from "./probe.ts";

/** A request from a peer; the reply to write back, or null if invalid (the stream is closed). */
export const answerStream = (ctx: NodeContext, request: Uint8Array): Uint8Array | null => {
  const decoded = decodeStream(request, ctx.config.maxStreamBytes);
  if (!decoded.ok) {
    ctx.stats.decodeErrors++;
    return null;
  }
  const msg = decoded.value;
  switch (msg.t) {
    case T.fetch:
      return encodeMessage({ t: T.states, states: heldStates(ctx, msg.names) });
    case T.ping: {
      if (msg.to !== ctx.self.name) {
        ctx.stats.misaddressedPings++;
        return null;
      }
      const self = ctx.self;
      return encodeMessage({ t: T.ack, seq: msg.seq, from: self.name, inc: self.inc, boot: self.boot });
    }
    case T.pushPull: {
      const peerHolds = new Map(msg.members.map((m) => [m.name, m.version]));
      // Merge first: a refutation it provokes (the peer thinks us dead) goes out in the reply.
      mergePushPull(ctx, msg);
      return encodePushPull(ctx, buildPushPull(ctx, false, peerHolds));
    }
    default:
      ctx.stats.decodeErrors++;
      return null;
  }
};

/** The reply to a stream we opened with `token`. */
export const streamReplied = (ctx: NodeContext, token: number, reply: Uint8Array): void => {
  const pending = ctx.streams.get(token);
  if (pending === undefined) return; // timed out already
  const decoded = decodeStream(reply, ctx.config.maxStreamBytes);
  const msg = decoded.ok ? decoded.value : null;
  if (pending.kind === "push-pull" && msg?.t === T.pushPull) {
    ctx.streams.delete(token);
    mergePushPull(ctx, msg);
    if (pending.join) joined(ctx, pending.to);
    return;
  }
  if (pending.kind === "ping" && msg?.t === T.ack) {
    ctx.streams.delete(token);
    onAck(ctx, msg);
    return;
  }
  if (pending.kind === "fetch" && msg?.t === T.states) {
    ctx.streams.delete(token);
    fetchDone(ctx, pending.names, msg.states);
    return;
  }
  ctx.stats.decodeErrors++;
  streamFailed(ctx, token);
};

const joined = (ctx: NodeContext, seed: Address): void => {
  ctx.emit({ type: "joined", seed, members: ctx.members.size });
  // Two more exchanges a little later pick up members that joined at the same time as us
  // through other seeds (merged members are not re-gossiped: see membership.ts aliveNode).
  const resync = ctx.config.joinResyncMs;
  if (resync > 0) {
    ctx.schedule(resync / 2 + randomInt(ctx.rng, resync), { kind: "push-pull-once" });
    ctx.schedule(4 * resync + randomInt(ctx.rng, 2 * resync), { kind: "push-pull-once" });
  }
};

/** A stream we opened could not connect, was cut, or timed out. */
export const streamFailed = (ctx: NodeContext, token: number, refused = false): void => {
  const pending = ctx.streams.get(token);
  if (pending === undefined) return;
  ctx.streams.delete(token);
  ctx.stats.streamFailures++;
  if (pending.kind === "ping" && refused) onPingRefused(ctx, pending.seq);
  else if (pending.kind === "fetch") fetchDone(ctx, pending.names, null);
  else if (pending.kind === "push-pull" && pending.join) ctx.emit({ type: "join-failed", seed: pending.to });
};

/**
 * Push-pull with each seed (memberlist Join). Results arrive as joined / join-failed events. The
 * seeds are remembered: tried again while we know no one else, and by reconnect (reconnect.ts).
 */
export const joinSeeds = (ctx: NodeContext, seeds: readonly Address[]): number => {
  for (const seed of seeds) if (seed !== ctx.self.addr) ctx.seeds.add(seed);
  return joinAddresses(ctx, seeds);
};

/** A join push-pull with each address (but our own). */
export const joinAddresses = (ctx: NodeContext, addresses: Iterable<Address>): number => {
  let opened = 0;
  for (const to of new Set(addresses)) {
    if (to === ctx.self.addr) continue;
    const request = encodePushPull(ctx, buildPushPull(ctx, true, null));
    openStream(ctx, { kind: "push-pull", to, join: true }, request);
    opened++;
  }
  return opened;
};
