/**
 * GossipNode: SWIM + Lifeguard membership with app state and aliases, as a pure state machine
 * (the shape of caio/foca and quinn-proto). No I/O, no clock, no global randomness: packets,
 * stream messages and timers come in through the handle* methods with `now`; packets, timers,
 * streams and events go out through the Runtime given at construction. The UDP/TCP adapter and
 * the simulator are two drivers of this one class.
 *
 * `now` is the wall clock in epoch milliseconds (it also drives the alias HLC); it must not go
 * backwards between calls.
 */

import { HashdError } from "../../lib/errors.ts";
import type { Rng } from "../../lib/prng.ts";
import { randomInt } from "../../lib/prng.ts";
import type { AliasRecord, AliasWrite } from "../../model/alias-record.ts";
import { copyAliasRecord } from "../../model/alias-table.ts";
import type { HashReport, MemberAppState } from "../../model/reports.ts";
import { type GossipConfig, resolveConfig } from "./config.ts";
import { NodeContext } from "./swim/context.ts";
import { memberInfo } from "./swim/members.ts";
import { announceSelf } from "./swim/membership.ts";
import { handlePacket } from "./swim/packets.ts";
import { onProbeTimeout, onProbeTimer, onRelayNack, onRelayTimeout } from "./swim/probe.ts";
import { onSuspicionTimer } from "./swim/recheck.ts";
import { armReconnect, onReconnectTimer } from "./swim/reconnect.ts";
import { runEagerGossipRound, runGossipRound, runPushPullRound } from "./swim/rounds.ts";
import { answerStream, joinSeeds, streamFailed, streamReplied } from "./swim/streams.ts";
import { cloneAppState } from "./sync/app-state.ts";
import { broadcastAliases } from "./sync/push-pull.ts";
import { onPublishTimer, setLocalState } from "./sync/state-sync.ts";
import type {
  Address,
  GossipStats,
  Identity,
  MemberInfo,
  MemberStatus,
  Runtime,
  StateVersion,
  Timer,
} from "./types.ts";
import { ingressProblem } from "./wire/addresses.ts";
import {
  aliasEntryOf,
  aliasWriteProblem,
  appStateProblem,
  isAddr,
  isAliasName,
  isClock,
  isCounter,
  isName,
  isStoreHash,
  LIMITS,
} from "./wire/codec-fields.ts";
import { T } from "./wire/messages.ts";
import { SeenCache } from "./wire/seen-cache.ts";

export interface RunningHash {
  member: MemberInfo;
  report: HashReport;
}

export class GossipNode {
  private readonly ctx: NodeContext;
  private readonly seen = new SeenCache();

  constructor(config: Partial<GossipConfig>, identity: Identity, rng: Rng, now: number, runtime: Runtime) {
    if (!isName(identity.name))
      throw new HashdError("bad_request", `invalid member name ${JSON.stringify(identity.name)}`);
    if (!isAddr(identity.address)) {
      throw new HashdError(
        "bad_request",
        `member address must be "ip:port", got ${JSON.stringify(identity.address)}`,
      );
    }
    if (!isClock(identity.boot) || identity.boot === 0)
      throw new HashdError("bad_request", `boot id must be a positive integer up to ${LIMITS.clock}`);
    const ctx = new NodeContext(resolveConfig(config), identity, rng, runtime, now);
    this.ctx = ctx;
    // memberlist setAlive: announce ourselves; our own timers start at random offsets so that
    // members started together do not probe and gossip in lockstep.
    announceSelf(ctx);
    ctx.probeToken = ctx.nextToken();
    ctx.schedule(randomInt(rng, ctx.config.probeIntervalMs), { kind: "probe", token: ctx.probeToken });
    ctx.gossipToken = ctx.nextToken();
    ctx.schedule(randomInt(rng, ctx.config.gossipIntervalMs), { kind: "gossip", token: ctx.gossipToken });
    ctx.pushPullToken = ctx.nextToken();
    ctx.schedule(randomInt(rng, ctx.config.pushPullIntervalMs), {
      kind: "push-pull",
      token: ctx.pushPullToken,
    });
    armReconnect(ctx, randomInt(rng, ctx.config.reconnectIntervalMs));
  }

  get name(): string {
    return this.ctx.self.name;
  }

  get config(): Readonly<GossipConfig> {
    return this.ctx.config;
  }

  // ---- inputs -------------------------------------------------------------------------------

  /** One opened (plaintext) UDP packet from `from`. Invalid packets are counted and dropped. */
  handlePacket(from: Address, bytes: Uint8Array, now: number): void {
    this.ctx.now = now;
    handlePacket(this.ctx, this.seen, from, bytes);
  }

  handleTimer(timer: Timer, now: number): void {
    const ctx = this.ctx;
    ctx.now = now;
    switch (timer.kind) {
      case "probe":
        onProbeTimer(ctx, timer.token);
        return;
      case "probe-timeout":
        onProbeTimeout(ctx, timer.seq);
        return;
      case "relay-nack":
        onRelayNack(ctx, timer.seq);
        return;
      case "relay-timeout":
        onRelayTimeout(ctx, timer.seq);
        return;
      case "reconnect":
        onReconnectTimer(ctx, timer.token);
        return;
      case "suspicion":
        onSuspicionTimer(ctx, timer.name, timer.token);
        return;
      case "gossip":
        runGossipRound(ctx, timer.token);
        return;
      case "gossip-eager":
        runEagerGossipRound(ctx);
        return;
      case "push-pull":
        runPushPullRound(ctx, timer.token);
        return;
      case "push-pull-once":
        runPushPullRound(ctx, 0, true);
        return;
      case "publish-state":
        onPublishTimer(ctx, timer.token);
        return;
      case "stream-timeout":
        streamFailed(ctx, timer.token);
        return;
    }
  }

  /**
   * A stream request (push-pull, fetch or fallback ping) from a peer; returns the reply to write
   * back, or null if the request was invalid (the adapter closes the stream).
   */
  handleStreamRequest(request: Uint8Array, now: number): Uint8Array | null {
    this.ctx.now = now;
    return answerStream(this.ctx, request);
  }

  /** The reply to a stream we opened with `token` (Runtime.openStream). */
  handleStreamResponse(token: number, reply: Uint8Array, now: number): void {
    this.ctx.now = now;
    streamReplied(this.ctx, token, reply);
  }

  /**
   * A stream we opened could not connect, was cut, or timed out in the adapter. `refused`: the
   * connect was answered with a reset, so the peer's host is up but nothing listens on its port.
   */
  handleStreamFailure(token: number, now: number, refused = false): void {
    this.ctx.now = now;
    streamFailed(this.ctx, token, refused);
  }

  // ---- commands -----------------------------------------------------------------------------

  /**
   * Push-pull with each seed (memberlist Join). Results arrive as joined / join-failed events. The
   * seeds are kept: joined again every `joinRetryMs` while no other member is alive, and tried by
   * reconnect when they are not alive members (reconnect.ts).
   */
  join(seeds: readonly Address[], now: number): number {
    const ctx = this.ctx;
    ctx.now = now;
    const opened = joinSeeds(ctx, seeds);
    if (opened > 0 && !ctx.leaving) armReconnect(ctx, ctx.config.joinRetryMs + randomInt(ctx.rng, 500));
    return opened;
  }

  /** One push-pull with a random live member now (its whole alias table and the states we lack). */
  pushPullNow(now: number): void {
    this.ctx.now = now;
    runPushPullRound(this.ctx, 0, true);
  }

  /**
   * Leave gracefully: announce "left" (a dead message from ourselves) and stop probing. Keep the
   * driver running for a few gossip intervals so the announcement spreads; then stop it.
   */
  leave(now: number): void {
    const ctx = this.ctx;
    ctx.now = now;
    if (ctx.leaving) return;
    ctx.leaving = true;
    const self = ctx.self;
    self.status = "left";
    self.stateChangedAt = now;
    ctx.broadcast(`m:${self.name}`, { t: T.dead, name: self.name, inc: self.inc, from: self.name });
    runGossipRound(ctx, ctx.gossipToken, false);
  }

  /** Replace this member's app state. Throws HashdError("bad_request") if it is invalid. */
  setLocalState(state: MemberAppState, now: number): void {
    const problem = appStateProblem(state);
    if (problem !== null) throw new HashdError("bad_request", `invalid local state: ${problem}`);
    this.ctx.now = now;
    setLocalState(this.ctx, state);
  }

  /**
   * Loads alias records an agent kept from before a restart (its database). Nothing is broadcast:
   * records that lost meanwhile lose again at the next push-pull, winners spread from there.
   */
  restoreAliases(records: readonly AliasRecord[], now: number): void {
    const ctx = this.ctx;
    for (const r of records) {
      if (!isAliasName(r.name) || (r.hash !== null && !isStoreHash(r.hash))) continue;
      if (!isClock(r.hlc.wall) || !isCounter(r.hlc.logical)) continue; // as the codec refuses it
      if (aliasWriteProblem(r) !== null) continue;
      ctx.aliases.observe(r.hlc, Math.max(now, r.hlc.wall), Number.POSITIVE_INFINITY);
      const previous = r.previous.filter(isStoreHash).slice(0, LIMITS.previousPerAlias);
      ctx.aliases.apply({ ...copyAliasRecord(r), previous });
    }
  }

  /** Point an alias at a hash (null removes it). */
  setAlias(name: string, hash: string | null, now: number): AliasRecord {
    return this.setAliases([{ name, hash }], now)[0] as AliasRecord;
  }

  /** Several aliases in one write: one HLC timestamp, one broadcast. */
  setAliases(entries: readonly AliasWrite[], now: number): AliasRecord[] {
    if (entries.length === 0 || entries.length > LIMITS.aliasEntriesPerWrite) {
      throw new HashdError("bad_request", `an alias write holds 1 to ${LIMITS.aliasEntriesPerWrite} entries`);
    }
    for (const e of entries) {
      if (!isAliasName(e.name))
        throw new HashdError("bad_request", `invalid alias name ${JSON.stringify(e.name)}`);
      if (e.hash !== null && !isStoreHash(e.hash)) {
        throw new HashdError("bad_request", `not a store hash: ${JSON.stringify(e.hash)}`);
      }
      const problem = aliasWriteProblem(e);
      if (problem !== null) throw new HashdError("bad_request", `alias ${e.name}: ${problem}`);
    }
    const ctx = this.ctx;
    ctx.now = now;
    const hlc = ctx.aliases.tick(now);
    const origin = ctx.self.name;
    const records = entries.map((e) => ctx.aliases.record(e, hlc, origin));
    for (const r of records) {
      if (ctx.aliases.apply(r)) ctx.emit({ type: "alias-changed", record: copyAliasRecord(r) });
    }
    broadcastAliases(ctx, {
      t: T.alias,
      origin,
      hlc,
      entries: records.map(aliasEntryOf),
    });
    return records.map(copyAliasRecord);
  }

  // ---- reads --------------------------------------------------------------------------------

  members(): MemberInfo[] {
    return [...this.ctx.members.all()].map(memberInfo);
  }

  /** Status of one member as we see it (cheap: no copy), or null if unknown. */
  memberStatus(name: string): MemberStatus | null {
    return this.ctx.members.get(name)?.status ?? null;
  }

  /** Version of the state we hold for `name` (cheap: no copy of the state). */
  stateVersionOf(name: string): StateVersion | null {
    const v = this.ctx.members.get(name)?.version;
    return v ? { boot: v.boot, seq: v.seq } : null;
  }

  /** How many members we see in each status (ourselves included). */
  countByStatus(): Record<MemberStatus, number> {
    const out: Record<MemberStatus, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.ctx.members.all()) out[m.status]++;
    return out;
  }

  memberState(name: string): MemberAppState | null {
    const m = this.ctx.members.get(name);
    return m?.app ? cloneAppState(m.app) : null;
  }

  /**
   * The ingress address `name` reports, if a route may be made to it: an IP literal a member
   * could serve from, the IP of its gossip address (wire/addresses.ts). Null otherwise, or if none.
   */
  routableIngress(name: string): string | null {
    const m = this.ctx.members.get(name);
    const ingress = m?.app?.ingress;
    if (m === undefined || ingress === undefined) return null;
    return ingressProblem(ingress, m.addr) === null ? ingress : null;
  }

  aliases(): AliasRecord[] {
    return this.ctx.aliases.all();
  }

  /** Members alive or suspect that report `hash`, with their report. Dead members' reports expire. */
  whoRuns(hash: string): RunningHash[] {
    const holders = this.ctx.index.holders(hash);
    if (holders === undefined) return [];
    const out: RunningHash[] = [];
    for (const [name, report] of holders) {
      const m = this.ctx.members.get(name);
      if (m === undefined || (m.status !== "alive" && m.status !== "suspect")) continue;
      out.push({ member: memberInfo(m), report: { ...report, refs: [...report.refs] } });
    }
    return out;
  }

  /** Lifeguard's local health score (0 = healthy). */
  get healthScore(): number {
    return this.ctx.awareness.score;
  }

  stats(): GossipStats & { queueDepth: number; members: number } {
    return { ...this.ctx.stats, queueDepth: this.ctx.queue.size, members: this.ctx.members.size };
  }
}
