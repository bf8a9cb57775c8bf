/**
 * The two periodic rounds besides probing (memberlist state.go gossip / pushPull):
 *
 * - gossip, every GossipInterval: pending broadcasts to GossipNodes random members, dead ones
 *   included for GossipToTheDeadTime so a member wrongly declared dead hears it and refutes; and,
 *   not memberlist's, an extra round soon after news is queued (config eagerGossipMs), so each hop
 *   of an infection costs a few milliseconds instead of half a gossip interval on average;
 * - push-pull, every PushPullInterval stretched with the cluster size: a full state exchange with
 *   one random live member.
 *
 * Reconnecting to failed members and seeds is Serf's and has its own timer (reconnect.ts).
 */

import { buildPushPull, encodePushPull } from "../sync/push-pull.ts";
import { openStream } from "../sync/state-sync.ts";
import type { Address } from "../types.ts";
import type { NodeContext } from "./context.ts";
import { pushPullScale } from "./scaling.ts";

export const runGossipRound = (ctx: NodeContext, token: number, reschedule = true): void => {
  if (token !== ctx.gossipToken) return;
  if (reschedule) ctx.schedule(ctx.config.gossipIntervalMs, { kind: "gossip", token });
  if (ctx.queue.size === 0) return;
  ctx.lastGossipAt = ctx.now;
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

export const runEagerGossipRound = (ctx: NodeContext): void => {
  ctx.eagerGossipPending = false;
  runGossipRound(ctx, ctx.gossipToken, false);
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
};

const pushPullWith = (ctx: NodeContext, to: Address): void => {
  openStream(
    ctx,
    { kind: "push-pull", to, join: false },
    encodePushPull(ctx, buildPushPull(ctx, false, null)),
  );
};
