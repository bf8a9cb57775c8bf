/**
 * The two periodic rounds besides probing (memberlist state.go gossip / pushPull):
 *
 * - gossip, every GossipInterval: pending broadcasts to GossipNodes random members, dead ones
 *   included for GossipToTheDeadTime so a member wrongly declared dead hears it and refutes;
 * - push-pull, every PushPullInterval stretched with the cluster size: a full state exchange with
 *   one random live member, and (Serf's reconnect, folded in here) now and then with a member we
 *   consider dead or have reaped, which is how a healed partition finds itself again.
 */

import type { NodeContext } from "./context.ts";
import { isDeadOrLeft } from "./members.ts";
import { randomFloat, randomInt } from "./prng.ts";
import { buildPushPull, encodePushPull } from "./push-pull.ts";
import { pushPullScale } from "./scaling.ts";
import { openStream } from "./state-sync.ts";
import type { Address } from "./types.ts";

export const runGossipRound = (ctx: NodeContext, token: number, reschedule = true): void => {
  if (token !== ctx.gossipToken) return;
  if (reschedule) ctx.schedule(ctx.config.gossipIntervalMs, { kind: "gossip", token });
  if (ctx.queue.size === 0) return;
  const self = ctx.self;
  const now = ctx.now;
  const deadWindow = ctx.config.gossipToTheDeadMs;
  const targets = ctx.members.kRandom(ctx.config.gossipNodes, ctx.rng, (m) => {
    if (m === self) return false;
    if (m.status === "alive" || m.status === "suspect") return true;
    return m.status === "dead" && now - m.stateChangedAt <= deadWindow;
  });
  for (const t of targets) {
    if (!ctx.send(t.addr, null)) return;
  }
};

export const runPushPullRound = (ctx: NodeContext, token: number, once = false): void => {
  if (!once && token !== ctx.pushPullToken) return;
  const n = ctx.members.size;
  if (!once) ctx.schedule(pushPullScale(ctx.config.pushPullIntervalMs, n), { kind: "push-pull", token });
  if (ctx.leaving) return;
  const self = ctx.self;
  const live = ctx.members.kRandom(
    1,
    ctx.rng,
    (m) => m !== self && (m.status === "alive" || m.status === "suspect"),
  );
  const peer = live[0];
  if (peer !== undefined) pushPullWith(ctx, peer.addr);
  const failed = reconnectCandidates(ctx);
  // Serf's reconnect odds: more likely the larger the failed share, so a partition that cut off
  // half the cluster is retried by everyone, one stray failure only now and then.
  const aliveCount = Math.max(1, n - failed.length);
  if (failed.length > 0 && randomFloat(ctx.rng) < failed.length / aliveCount) {
    pushPullWith(ctx, failed[randomInt(ctx.rng, failed.length)] as Address);
  }
};

const pushPullWith = (ctx: NodeContext, to: Address): void => {
  openStream(
    ctx,
    { kind: "push-pull", to, join: false },
    encodePushPull(ctx, buildPushPull(ctx, false, null)),
  );
};

/** Addresses of members dead (not left) in the table or among the reaped. */
const reconnectCandidates = (ctx: NodeContext): Address[] => {
  const out: Address[] = [];
  for (const m of ctx.members.all()) if (isDeadOrLeft(m) && m.status === "dead") out.push(m.addr);
  for (const [, t] of ctx.members.buried()) if (!t.left) out.push(t.addr);
  return out;
};
