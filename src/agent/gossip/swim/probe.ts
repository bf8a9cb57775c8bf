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

import { openStream, ownVersionDigest } from "../sync/state-sync.ts";
import type { Address, GossipEvent } from "../types.ts";
import { encodeMessage } from "../wire/codec.ts";
import { type Ack, type Nack, type Ping, type PingReq, T } from "../wire/messages.ts";
import type { NodeContext, ProbeState } from "./context.ts";
import { isDeadOrLeft, type Member, memberInfo } from "./members.ts";
import { extendSuspicion, learnFromAck, suspectNode } from "./membership.ts";

/** Bound on concurrent ping-req relays, so a flood of ping-reqs cannot grow memory. */
const MAX_RELAYS = 1024;

/**
 * A relay nacks after this share of the probe timeout. memberlist nacks after the whole timeout,
 * but the requester sends its ping-req one probe timeout into a probe that lasts one probe
 * interval (twice that by default), so a full-timeout nack lands just after the requester stopped
 * counting: every probe of a member that is really gone then reads as "no helper answered" and
 * raises the requester's health score by the number of helpers. 80% leaves the nack room for the
 * trip back (as apple/swift-cluster-membership does for the same reason).
 */
export const RELAY_NACK_SHARE = 0.8;

export const onProbeTimer = (ctx: NodeContext, token: number): void => {
  if (token !== ctx.probeToken) return;
  finishRoundProbe(ctx);
  if (ctx.leaving) return;
  ctx.schedule(ctx.awareness.scale(ctx.config.probeIntervalMs), { kind: "probe", token });
  const reaped: Member[] = [];
  const target = ctx.members.nextProbeTarget(
    ctx.self.name,
    ctx.rng,
    ctx.now,
    ctx.config.gossipToTheDeadMs,
    reaped,
  );
  for (const m of reaped) forget(ctx, m);
  if (reaped.length > 0) {
    ctx.members.expireTombstones(ctx.now, ctx.config.tombstoneMs, ctx.config.maxTombstones);
  }
  if (target !== null) ctx.probe = startProbe(ctx, target, "round");
};

/**
 * Ping `target` and arm the probe timeout. Lifeguard's "buddy system": a suspect is told it is
 * suspected in the ping itself, so it can refute at once (its ack then carries the refutation:
 * packets.ts applies membership news before answering the ping).
 */
export const startProbe = (ctx: NodeContext, target: Member, kind: ProbeState["kind"]): ProbeState => {
  const seq = ctx.nextSeq();
  const extra =
    target.status === "suspect"
      ? [encodeMessage({ t: T.suspect, name: target.name, inc: target.inc, from: ctx.self.name })]
      : [];
  extra.push(...ownVersionDigest(ctx));
  const ping: Ping = { t: T.ping, seq, to: target.name };
  ctx.send(target.addr, ping, extra);
  ctx.schedule(ctx.awareness.scale(ctx.config.probeTimeoutMs), { kind: "probe-timeout", seq });
  return {
    seq,
    target,
    inc: target.inc,
    kind,
    acked: false,
    ackInc: 0,
    ackBoot: 0,
    helpers: [],
    nackFrom: new Set(),
  };
};

/** A reaped member: gone from the table, its reports gone from whoRuns. */
const forget = (ctx: NodeContext, m: Member): void => {
  ctx.index.replace(m.name, m.app, null);
  ctx.wants.delete(m.name);
  const event: GossipEvent = { type: "member-reaped", member: memberInfo(m) };
  ctx.emit(event);
};

/** The probe (round or recheck) with this sequence number, if it is outstanding. */
const probeBySeq = (ctx: NodeContext, seq: number): ProbeState | undefined =>
  ctx.probe !== null && ctx.probe.seq === seq ? ctx.probe : ctx.rechecks.get(seq);

export const onProbeTimeout = (ctx: NodeContext, seq: number): void => {
  const p = probeBySeq(ctx, seq);
  if (p === undefined || p.acked) return;
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
 * Not memberlist's: the fallback ping's connect was refused, so the target's host is up and
 * nothing listens on its gossip port: its agent is not running (crashed, killed, stopped). The
 * round's probe then raises its suspicion at once instead of at the end of the probe interval,
 * about half a probe interval sooner. The suspicion still runs its whole course (the timeout,
 * confirmations, the recheck) before any death, and a member that is in fact up refutes it as
 * any other; the health score is still settled when the probe ends.
 */
export const onPingRefused = (ctx: NodeContext, seq: number): void => {
  const p = ctx.probe;
  if (p === null || p.seq !== seq || p.acked || p.kind !== "round") return;
  const target = p.target;
  if (target.status !== "alive" || target.inc !== p.inc) return;
  ctx.stats.refusedPings++;
  suspectNode(ctx, { t: T.suspect, name: target.name, inc: p.inc, from: ctx.self.name });
};

/**
 * Lifeguard's health delta for a probe that got no ack: each helper that did not even nack is a
 * sign the fault is on our side (+1 if no helper could be asked).
 */
export const unansweredProbeHealth = (ctx: NodeContext, p: ProbeState): void => {
  const expected = p.helpers.length;
  ctx.awareness.applyDelta(expected > 0 ? expected - p.nackFrom.size : 1);
};

/** End of the round's probe: reward an ack, or suspect the target and adjust our health score. */
const finishRoundProbe = (ctx: NodeContext): void => {
  const p = ctx.probe;
  ctx.probe = null;
  if (p === null) return;
  const target = p.target;
  if (p.acked) {
    ctx.awareness.applyDelta(-1);
    learnFromAck(ctx, target, p.ackInc, p.ackBoot);
    return;
  }
  unansweredProbeHealth(ctx, p);
  if (isDeadOrLeft(target)) return;
  suspectNode(ctx, { t: T.suspect, name: target.name, inc: p.inc, from: ctx.self.name });
};

/**
 * A suspect answered its last-chance probe: settled at once. An incarnation above the suspected
 * one is a refutation (alive); the same one means it is up but has not refuted yet (it just
 * learned of the suspicion from our ping): give it time.
 */
const settleAnsweredRecheck = (ctx: NodeContext, p: ProbeState): void => {
  ctx.rechecks.delete(p.seq);
  ctx.awareness.applyDelta(-1);
  const m = p.target;
  if (learnFromAck(ctx, m, p.ackInc, p.ackBoot)) return;
  const s = m.suspicion;
  if (m.status === "suspect" && m.inc === p.inc && s?.recheck.phase === "running" && s.recheck.seq === p.seq)
    extendSuspicion(ctx, m);
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
  const timeout = ctx.config.probeTimeoutMs;
  if (req.nack) ctx.schedule(Math.floor(RELAY_NACK_SHARE * timeout), { kind: "relay-nack", seq });
  ctx.schedule(timeout, { kind: "relay-timeout", seq });
};

/** The target has not answered the relayed ping yet: tell the requester we tried. */
export const onRelayNack = (ctx: NodeContext, seq: number): void => {
  const r = ctx.relays.get(seq);
  if (r === undefined || !r.nack) return;
  r.nack = false;
  const nack: Nack = { t: T.nack, seq: r.origSeq };
  ctx.send(r.requester, nack);
};

/** Past the probe timeout a late ack is no use to the requester: forget the relay. */
export const onRelayTimeout = (ctx: NodeContext, seq: number): void => {
  ctx.relays.delete(seq);
};

export const onAck = (ctx: NodeContext, ack: Ack): void => {
  const r = ctx.relays.get(ack.seq);
  if (r !== undefined && r.target === ack.from) {
    ctx.relays.delete(ack.seq);
    ctx.send(r.requester, { ...ack, seq: r.origSeq });
    return;
  }
  const p = probeBySeq(ctx, ack.seq);
  if (p !== undefined && p.target.name === ack.from && (!p.acked || ack.inc > p.ackInc)) {
    p.acked = true;
    p.ackInc = ack.inc;
    p.ackBoot = ack.boot;
    if (p.kind === "recheck") settleAnsweredRecheck(ctx, p);
    return;
  }
  ctx.stats.staleAcks++;
};

export const onNack = (ctx: NodeContext, from: Address, nack: Nack): void => {
  const p = probeBySeq(ctx, nack.seq);
  if (p?.helpers.includes(from) && !p.nackFrom.has(from)) {
    p.nackFrom.add(from);
    return;
  }
  ctx.stats.staleNacks++;
};
