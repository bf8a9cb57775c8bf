/**
 * Membership transitions: alive, suspect, dead and left, ordered by incarnation (SWIM section
 * 4.2; memberlist state.go aliveNode/suspectNode/deadNode). Only a member itself raises its
 * incarnation (to refute), so a message about incarnation i is overridden by any later news:
 * alive(i') with i' > i beats everything about i; suspect(i) beats alive(i); dead(i) beats both.
 */

import { adoptOrphan, applyState, bumpBoot, ownStateSeen } from "../sync/state-sync.ts";
import type { Address } from "../types.ts";
import { encodeMessage } from "../wire/codec.ts";
import { LIMITS } from "../wire/codec-fields.ts";
import { type Alive, type Dead, type Suspect, T } from "../wire/messages.ts";
import type { NodeContext } from "./context.ts";
import { isDeadOrLeft, type Member, memberInfo } from "./members.ts";
import { suspicionTimeout } from "./scaling.ts";
import { Suspicion } from "./suspicion.ts";

const memberKey = (name: string): string => `m:${name}`;

/** Our own alive, carrying our state when it is small enough (as memberlist's alive carries meta). */
export const selfAlive = (ctx: NodeContext): { msg: Alive; bytes: Uint8Array } => {
  const self = ctx.self;
  const msg: Alive = { t: T.alive, name: self.name, addr: self.addr, inc: self.inc, boot: self.boot };
  if (self.version !== null && self.app !== null) {
    const withState: Alive = { ...msg, state: { version: self.version, state: self.app } };
    const bytes = encodeMessage(withState);
    if (bytes.length <= ctx.config.maxInlineStateBytes) return { msg: withState, bytes };
  }
  return { msg, bytes: encodeMessage(msg) };
};

/** Queue our own alive (at start, on refutation, and to publish a small state). */
export const announceSelf = (ctx: NodeContext): boolean => {
  const { msg, bytes } = selfAlive(ctx);
  ctx.broadcastBytes(memberKey(ctx.self.name), bytes);
  return msg.state !== undefined;
};

/**
 * `quiet`: learned by push-pull about a member new to us; not re-gossiped. memberlist re-gossips
 * it, so every joiner re-announces the whole cluster to a cluster that already knows it. Measured
 * in the simulator (1,000 members joining 50 per second): quiet merges plus follow-up push-pulls
 * after joining converged faster, with about half the simulator events, than memberlist's way
 * (the queues fill with old news and new news waits behind it).
 *
 * An alive can carry its member's state; the state part is applied whether or not the alive is
 * news, and gossiped on as a state message if only the state was news.
 */
export const aliveNode = (ctx: NodeContext, a: Alive, mode: AliveMode = "gossip"): void => {
  if (ctx.isSelf(a.name)) {
    if (a.state !== undefined) ownStateSeen(ctx, a.state.version);
    aliveSelf(ctx, a);
    return;
  }
  const regossiped = aliveMembership(ctx, a, mode);
  if (a.state !== undefined)
    applyState(ctx, a.name, a.state.version, a.state.state, !regossiped && mode === "gossip");
};

/**
 * gossip: news is re-gossiped; quiet: not if the member is new to us (push-pull); local: never
 * (an incarnation learned from the member's own ack: it gossips its refutation itself).
 */
export type AliveMode = "gossip" | "quiet" | "local";

const aliveSelf = (ctx: NodeContext, a: Alive): void => {
  const self = ctx.self;
  if (ctx.leaving || a.inc < self.inc) return;
  if (a.inc === self.inc && a.addr === self.addr && a.boot === self.boot) return; // our own, echoed
  if (a.addr !== self.addr) ctx.emit({ type: "name-conflict", name: a.name, address: a.addr });
  // Someone announces us at an incarnation we did not (our previous process, or a replay):
  // outrank it, and if it carried a later boot, take a boot above it too.
  if (a.boot > self.boot) bumpBoot(ctx, a.boot);
  refute(ctx, a.inc);
};

/** The membership part of an alive; true if it was news and was re-gossiped. */
const aliveMembership = (ctx: NodeContext, a: Alive, mode: AliveMode): boolean => {
  let m = ctx.members.get(a.name);
  let isNew = false;
  if (m === undefined) {
    if (ctx.members.isBuried(a.name, a.inc)) return false;
    m = {
      name: a.name,
      addr: a.addr,
      inc: a.inc,
      boot: a.boot,
      status: "dead",
      stateChangedAt: ctx.now,
      lastContact: 0,
      suspicion: null,
      version: null,
      app: null,
    };
    ctx.members.add(m, ctx.rng);
    isNew = true;
  } else {
    if (a.inc <= m.inc) return false;
    if (a.addr !== m.addr) ctx.members.setAddress(m, a.addr);
  }
  const regossip = mode === "gossip" || (mode === "quiet" && !isNew);
  if (regossip) ctx.broadcast(memberKey(a.name), a);
  m.inc = a.inc;
  dropSuspicion(ctx, m);
  if (a.boot > m.boot) {
    m.boot = a.boot;
    // A new process: whatever the old one reported is void (it is gone), even before its
    // successor's first report arrives. This is what keeps old reports from shadowing new ones.
    if (m.version !== null && m.version.boot < a.boot) {
      ctx.index.replace(m.name, m.app, null);
      m.version = null;
      m.app = null;
      ctx.emit({ type: "state-changed", name: m.name, version: null });
    }
  }
  if (m.status !== "alive") {
    m.status = "alive";
    m.stateChangedAt = ctx.now;
    ctx.emit({ type: "member-alive", member: memberInfo(m) });
  }
  if (isNew) adoptOrphan(ctx, m.name);
  return regossip;
};

/**
 * Returns false only if the member is unknown (the message may matter once it is known).
 * `from`: the address that sent it, told the newer news if its suspicion is stale.
 */
export const suspectNode = (ctx: NodeContext, s: Suspect, from?: Address): boolean => {
  const m = ctx.members.get(s.name);
  if (m === undefined) return false;
  if (s.inc < m.inc) {
    if (from !== undefined) correct(ctx, from, m);
    return true;
  }
  // Lifeguard: an independent accuser of an existing suspicion shortens its timeout, and is
  // worth re-gossiping so others can count it too.
  if (m.suspicion !== null) {
    if (m.suspicion.confirm(s.from)) {
      ctx.broadcast(memberKey(s.name), s);
      scheduleSuspicion(ctx, m);
    }
    return true;
  }
  if (m.status !== "alive") return true;
  if (ctx.isSelf(s.name)) {
    if (!ctx.leaving) refute(ctx, s.inc);
    return true;
  }
  ctx.broadcast(memberKey(s.name), s);
  m.inc = s.inc;
  m.status = "suspect";
  m.stateChangedAt = ctx.now;
  const { suspicionMult, suspicionMaxTimeoutMult, probeIntervalMs } = ctx.config;
  const n = ctx.members.size;
  // k confirmations drive the timeout to its minimum; with too few members to provide them,
  // expect none and use the minimum at once (memberlist suspectNode).
  const k = n - 2 < suspicionMult - 2 ? 0 : suspicionMult - 2;
  const min = suspicionTimeout(suspicionMult, n, probeIntervalMs);
  const max = suspicionMaxTimeoutMult * min;
  m.suspicion = new Suspicion(s.inc, s.from, k, min, max, ctx.now, 0);
  scheduleSuspicion(ctx, m);
  ctx.emit({ type: "member-suspect", member: memberInfo(m) });
  return true;
};

/**
 * Arm the suspicion timer of `m` for its next step. Before a suspect is declared dead it gets one
 * last full probe, the recheck (recheck.ts): it starts one probe interval (stretched by our health
 * score, as the probe itself is) before the deadline so that it has ended by then, and a recheck
 * still under way at the deadline is waited for. Leaving, we recheck nothing.
 */
export const scheduleSuspicion = (ctx: NodeContext, m: Member): void => {
  const s = m.suspicion as Suspicion;
  s.token = ctx.nextToken();
  const deadline = s.deadline();
  const r = s.recheck;
  let at = deadline;
  if (r.phase === "due" && !ctx.leaving) at = deadline - recheckLead(ctx);
  else if (r.phase === "running") at = Math.max(deadline, r.endsAt);
  ctx.schedule(at - ctx.now, { kind: "suspicion", name: m.name, token: s.token });
};

/** How long a recheck lasts: one probe interval at our current health score. */
export const recheckLead = (ctx: NodeContext): number => ctx.awareness.scale(ctx.config.probeIntervalMs);

/** A suspicion ends (refuted, or the member is dead or left): its recheck, if under way, is moot. */
const dropSuspicion = (ctx: NodeContext, m: Member): void => {
  const r = m.suspicion?.recheck;
  if (r?.phase === "running") ctx.rechecks.delete(r.seq);
  m.suspicion = null;
};

export const declareDead = (ctx: NodeContext, m: Member): void => {
  deadNode(ctx, { t: T.dead, name: m.name, inc: m.inc, from: ctx.self.name });
};

/**
 * The recheck was answered at the suspected incarnation: the member is up but has not refuted yet
 * (it learned of the suspicion from the recheck's ping). Give its refutation the minimum
 * suspicion time to arrive, then recheck again.
 */
export const extendSuspicion = (ctx: NodeContext, m: Member): void => {
  const s = m.suspicion;
  if (s === null) return;
  s.recheck = { phase: "due" };
  s.notBefore = ctx.now + s.minMs;
  scheduleSuspicion(ctx, m);
};

/** What the member itself said in an ack: an incarnation (and boot) above ours is a refutation. */
export const learnFromAck = (ctx: NodeContext, m: Member, inc: number, boot: number): boolean => {
  if (inc <= m.inc || ctx.isSelf(m.name)) return false;
  aliveNode(ctx, { t: T.alive, name: m.name, addr: m.addr, inc, boot }, "local");
  return true;
};

/** Returns false only if the member is unknown. `from` as for suspectNode. */
export const deadNode = (ctx: NodeContext, d: Dead, from?: Address): boolean => {
  const m = ctx.members.get(d.name);
  if (m === undefined) return false;
  if (d.inc < m.inc) {
    if (from !== undefined) correct(ctx, from, m);
    return true;
  }
  dropSuspicion(ctx, m);
  if (isDeadOrLeft(m)) return true;
  if (ctx.isSelf(d.name)) {
    if (!ctx.leaving) refute(ctx, d.inc);
    return true;
  }
  ctx.broadcast(memberKey(d.name), d);
  m.inc = d.inc;
  m.status = d.from === d.name ? "left" : "dead";
  m.stateChangedAt = ctx.now;
  ctx.emit({ type: m.status === "left" ? "member-left" : "member-dead", member: memberInfo(m) });
  return true;
};

/**
 * `to` just gossiped a suspicion (or death) of `m` at an incarnation `m` has already refuted:
 * send it the refutation directly. Gossip alone delivers a refutation to each member about
 * retransmitMult * log10(n) times; at 10% loss a member now and then gets none before its
 * suspicion timer runs out (measured: ~3 false deaths per 10 minutes at 100 members). A member
 * that repeats a stale suspicion is exactly the one that missed it, so it is told. At most once
 * a second per (address, member).
 */
const correct = (ctx: NodeContext, to: Address, m: Member): void => {
  if (m.status !== "alive") return;
  const key = `${to}|${m.name}`;
  const last = ctx.corrections.get(key);
  if (last !== undefined && ctx.now - last < 1000) return;
  if (ctx.corrections.size >= 1024) ctx.corrections.clear();
  ctx.corrections.set(key, ctx.now);
  const alive = ctx.isSelf(m.name) ? selfAlive(ctx).bytes : encodeMessage(aliveOf(m));
  ctx.send(to, null, [alive]);
};

const aliveOf = (m: Member): Alive => ({ t: T.alive, name: m.name, addr: m.addr, inc: m.inc, boot: m.boot });

/**
 * Someone suspects us (or thinks us dead) at incarnation `seen`: announce ourselves alive at a
 * higher one (SWIM section 4.2). Lifeguard counts it against our health: being suspected is a
 * hint that we answer slowly.
 *
 * Never past LIMITS.clock (codec-fields.ts: peers refuse anything above it, so an incarnation
 * past it would make every later ack and alive of ours undecodable). No member reaches the bound
 * by refuting; a claim at it is a replay of such a claim or a key holder's forgery. Then we do not
 * refute, and say so (event "incarnation-exhausted", once per claim): members that took the claim
 * see us suspect, then dead, until they reap us and forget the tombstone (gossipToTheDeadMs +
 * tombstoneMs); our alive is accepted again after that. Staying quiet is the safe choice: any
 * other incarnation we could send is either refused or not above the claim.
 */
export const refute = (ctx: NodeContext, seen: number): void => {
  const self = ctx.self;
  const next = Math.max(self.inc, seen) + 1;
  if (next > LIMITS.clock) {
    exhausted(ctx, "incarnation", seen);
    return;
  }
  self.inc = next;
  ctx.stats.refutations++;
  ctx.awareness.applyDelta(1);
  announceSelf(ctx);
};

/** A claim about us that we cannot outrank without passing LIMITS.clock: told once per value. */
export const exhausted = (ctx: NodeContext, field: "incarnation" | "boot", claimed: number): void => {
  const key = `${field}:${claimed}`;
  if (ctx.exhaustedClaim === key) return;
  ctx.exhaustedClaim = key;
  ctx.emit({ type: "incarnation-exhausted", field, claimed, bound: LIMITS.clock });
};
