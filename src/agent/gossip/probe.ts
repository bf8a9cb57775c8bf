/**
 * Failure detection (SWIM section 3.1 with Lifeguard, as memberlist state.go probeNode).
 *
 * Every probe interval (stretched by the local health score) we ping the next member in the
 * probe order. No ack within the probe timeout: we ask `indirectChecks` other members to ping it
 * for us (ping-req), and they answer with the ack or, Lifeguard's addition, a nack when they got
 * nothing either, so we learn whether *we* are the one missing packets. No ack by the end of the
 * interval: the member becomes suspect (membership.ts takes it from there).
 *
 * Replay: an ack counts only if its sequence number is the one outstanding and it names the
 * member probed; a replayed or late ack is counted and dropped. A replayed ping makes us send an
 * ack (to the replayer's address, sealed, with whatever broadcasts we have queued): it wastes a
 * packet and reveals nothing a key holder could not see; its piggybacked broadcasts are ordinary
 * versioned messages and change nothing they did not change the first time. A replayed ping-req
 * makes us ping the target once; the ack we relay is stale for the requester.
 */

import { encodeMessage } from "./codec.ts";
import type { NodeContext } from "./context.ts";
import { isDeadOrLeft, type Member, memberInfo } from "./members.ts";
import { declareDead, extendSuspicion, learnFromAck, suspectNode } from "./membership.ts";
import { type Ack, type Nack, type Ping, type PingReq, T } from "./messages.ts";
import { openStream, ownVersionDigest } from "./state-sync.ts";
import type { Address, GossipEvent } from "./types.ts";

/** Bound on concurrent ping-req relays, so a flood of ping-reqs cannot grow memory. */
const MAX_RELAYS = 1024;

export const onProbeTimer = (ctx: NodeContext, token: number): void => {
  if (token !== ctx.probeToken) return;
  finishProbe(ctx);
  if (ctx.leaving) return;
  ctx.schedule(ctx.awareness.scale(ctx.config.probeIntervalMs), { kind: "probe", token });
  const reaped: Member[] = [];
  const recheck = nextRecheck(ctx);
  const target =
    recheck ??
    ctx.members.nextProbeTarget(ctx.self.name, ctx.rng, ctx.now, ctx.config.gossipToTheDeadMs, reaped);
  for (const m of reaped) forget(ctx, m);
  if (reaped.length > 0) {
    ctx.members.expireTombstones(ctx.now, ctx.config.tombstoneMs, ctx.config.maxTombstones);
  }
  if (target === null) return;
  const seq = ctx.nextSeq();
  ctx.probe = {
    seq,
    target,
    inc: target.inc,
    recheck: recheck !== null,
    acked: false,
    ackInc: 0,
    ackBoot: 0,
    helpers: [],
    nackFrom: new Set(),
  };
  // Lifeguard's "buddy system": tell a suspect member it is suspected, in the ping itself, so it
  // can refute at once rather than when the gossip happens to reach it.
  const extra =
    target.status === "suspect"
      ? [encodeMessage({ t: T.suspect, name: target.name, inc: target.inc, from: ctx.self.name })]
      : [];
  extra.push(...ownVersionDigest(ctx));
  const ping: Ping = { t: T.ping, seq, to: target.name };
  ctx.send(target.addr, ping, extra);
  ctx.schedule(ctx.awareness.scale(ctx.config.probeTimeoutMs), { kind: "probe-timeout", seq });
};

/** A suspect whose suspicion ran out, to probe before anything else. */
const nextRecheck = (ctx: NodeContext): Member | null => {
  for (const name of ctx.rechecks) {
    ctx.rechecks.delete(name);
    const m = ctx.members.get(name);
    if (m?.status === "suspect") return m;
  }
  return null;
};

/** A reaped member: gone from the table, its reports gone from whoRuns. */
const forget = (ctx: NodeContext, m: Member): void => {
  ctx.index.replace(m.name, m.app, null);
  ctx.wants.delete(m.name);
  const event: GossipEvent = { type: "member-reaped", member: memberInfo(m) };
  ctx.emit(event);
};

export const onProbeTimeout = (ctx: NodeContext, seq: number): void => {
  const p = ctx.probe;
  if (p === null || p.seq !== seq || p.acked) return;
  const target = p.target;
  const self = ctx.self;
  const helpers = ctx.members.kRandom(
    ctx.config.indirectChecks,
    ctx.rng,
    (m) => m !== self && m !== target && m.status === "alive",
  );
  for (const h of helpers) {
    const req: PingReq = { t: T.pingReq, seq, target: target.name, targetAddr: target.addr, nack: true };
    p.helpers.push(h.addr);
    ctx.send(h.addr, req);
  }
  // memberlist's TCP fallback: a reliable stream gets through where UDP is being dropped (a
  // firewall, a lossy link), so UDP loss alone does not make a healthy member suspect.
  if (ctx.config.tcpFallbackPing) {
    const ping: Ping = { t: T.ping, seq, to: target.name };
    openStream(ctx, { kind: "ping", to: target.addr, seq, target: target.name }, encodeMessage(ping));
  }
};

/**
 * End of a probe: reward an ack, or suspect the target and adjust our health score. Lifeguard:
 * each helper that did not even nack is a sign the fault is on our side.
 */
const finishProbe = (ctx: NodeContext): void => {
  const p = ctx.probe;
  ctx.probe = null;
  if (p === null) return;
  const target = p.target;
  if (p.acked) {
    ctx.awareness.applyDelta(-1);
    const refuted = learnFromAck(ctx, target, p.ackInc, p.ackBoot);
    if (p.recheck && !refuted && target.status === "suspect" && target.inc === p.inc)
      extendSuspicion(ctx, target);
    return;
  }
  const expected = p.helpers.length;
  ctx.awareness.applyDelta(expected > 0 ? expected - p.nackFrom.size : 1);
  if (isDeadOrLeft(target)) return;
  if (p.recheck && target.status === "suspect" && target.inc === p.inc) {
    declareDead(ctx, target);
    return;
  }
  suspectNode(ctx, { t: T.suspect, name: target.name, inc: p.inc, from: ctx.self.name });
};

export const onPing = (ctx: NodeContext, from: Address, ping: Ping): void => {
  if (ping.to !== ctx.self.name) {
    ctx.stats.misaddressedPings++;
    return;
  }
  const ack: Ack = { t: T.ack, seq: ping.seq, from: ctx.self.name, inc: ctx.self.inc, boot: ctx.self.boot };
  ctx.send(from, ack, ownVersionDigest(ctx));
};

export const onPingReq = (ctx: NodeContext, from: Address, req: PingReq): void => {
  if (ctx.relays.size >= MAX_RELAYS || req.target === ctx.self.name) return;
  const seq = ctx.nextSeq();
  ctx.relays.set(seq, { origSeq: req.seq, requester: from, target: req.target, nack: req.nack });
  ctx.send(req.targetAddr, { t: T.ping, seq, to: req.target });
  ctx.schedule(ctx.config.probeTimeoutMs, { kind: "relay-timeout", seq });
};

export const onRelayTimeout = (ctx: NodeContext, seq: number): void => {
  const r = ctx.relays.get(seq);
  if (r === undefined) return;
  ctx.relays.delete(seq);
  if (r.nack) {
    const nack: Nack = { t: T.nack, seq: r.origSeq };
    ctx.send(r.requester, nack);
  }
};

export const onAck = (ctx: NodeContext, ack: Ack): void => {
  const r = ctx.relays.get(ack.seq);
  if (r !== undefined && r.target === ack.from) {
    ctx.relays.delete(ack.seq);
    ctx.send(r.requester, { ...ack, seq: r.origSeq });
    return;
  }
  const p = ctx.probe;
  if (p !== null && p.seq === ack.seq && p.target.name === ack.from && (!p.acked || ack.inc > p.ackInc)) {
    p.acked = true;
    p.ackInc = ack.inc;
    p.ackBoot = ack.boot;
    return;
  }
  ctx.stats.staleAcks++;
};

export const onNack = (ctx: NodeContext, from: Address, nack: Nack): void => {
  const p = ctx.probe;
  if (p !== null && p.seq === nack.seq && p.helpers.includes(from) && !p.nackFrom.has(from)) {
    p.nackFrom.add(from);
    return;
  }
  ctx.stats.staleNacks++;
};
