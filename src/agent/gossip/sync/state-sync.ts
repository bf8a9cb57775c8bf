/**
 * App state dissemination. Each member's state is one versioned snapshot (boot, seq):
 *
 * - small enough (encoded STATE message <= maxInlineStateBytes): gossiped whole, like any
 *   broadcast;
 * - larger: only "state-ver (name, version)" is gossiped, and a member that learns of a version
 *   newer than the one it holds fetches the snapshot over a stream from the member that told it
 *   (which holds that version: a member announces only what it holds), falling back to the
 *   owner. Then it announces the version itself, so fetches spread like the epidemic and the
 *   owner serves only its first few peers.
 *
 * Why whole snapshots and not per-hash entries: retirement reads one member's reports together
 * (in-flight counts and dependents of several hashes), a snapshot is never half-applied, and a
 * hash dropped from a report needs no tombstone. The cost is re-sending the whole snapshot on
 * each change; updates are coalesced to at most one per stateMinIntervalMs.
 */

import type { MemberAppState } from "../../../model/reports.ts";
import type { NodeContext, PendingStream } from "../swim/context.ts";
import type { Member } from "../swim/members.ts";
import { announceSelf, exhausted, refute } from "../swim/membership.ts";
import type { Address, StateVersion } from "../types.ts";
import { encodeMessage } from "../wire/codec.ts";
import { LIMITS } from "../wire/codec-fields.ts";
import { type FullState, type StateMsg, T } from "../wire/messages.ts";
import { cloneAppState, compareVersion, isNewer } from "./app-state.ts";

const MAX_NAMES_PER_FETCH = LIMITS.namesPerFetch;

const stateKey = (name: string): string => `s:${name}`;

/** Gossip the state we hold for `m`: whole if it fits, else its version (peers fetch it). */
export const announceState = (ctx: NodeContext, m: Member): void => {
  if (m.version === null || m.app === null) return;
  const full: StateMsg = { t: T.state, name: m.name, version: m.version, state: m.app };
  const bytes = encodeMessage(full);
  if (bytes.length <= ctx.config.maxInlineStateBytes) {
    ctx.broadcastBytes(stateKey(m.name), bytes);
  } else {
    ctx.broadcast(stateKey(m.name), { t: T.stateVer, name: m.name, version: m.version });
  }
};

/** Replace our own state (already validated). Published now, or coalesced with the next update. */
export const setLocalState = (ctx: NodeContext, state: MemberAppState): void => {
  const self = ctx.self;
  const next = cloneAppState(state);
  ctx.index.replace(self.name, self.app, next);
  self.app = next;
  self.version = { boot: self.boot, seq: ++ctx.localSeq };
  ctx.emit({ type: "state-changed", name: self.name, version: { ...self.version } });
  requestPublish(ctx);
};

const requestPublish = (ctx: NodeContext): void => {
  if (ctx.publishPending) return;
  const wait = ctx.lastPublishAt + ctx.config.stateMinIntervalMs - ctx.now;
  if (wait <= 0) {
    publishNow(ctx);
    return;
  }
  ctx.publishPending = true;
  ctx.publishToken = ctx.nextToken();
  ctx.schedule(wait, { kind: "publish-state", token: ctx.publishToken });
};

export const onPublishTimer = (ctx: NodeContext, token: number): void => {
  if (token !== ctx.publishToken || !ctx.publishPending) return;
  ctx.publishPending = false;
  publishNow(ctx);
};

/** A small state rides in our own alive (one broadcast); a large one is announced by version. */
const publishNow = (ctx: NodeContext): void => {
  ctx.lastPublishAt = ctx.now;
  if (ctx.leaving) return;
  if (!announceSelf(ctx)) announceState(ctx, ctx.self);
};

const ownVersion = (ctx: NodeContext): StateVersion => ctx.self.version ?? { boot: ctx.self.boot, seq: 0 };

/**
 * "state-ver" of our own state, to ride with every ping and ack we send (about 25 bytes). The
 * epidemic carries each update to every member only with high probability: with the transmit
 * limit of memberlist, a member misses a given update now and then (about e^-retransmitMult of
 * them in small clusters, measured in the retirement simulator), and when that update is the last
 * for a while (a retirement, a released hold), only the push-pull 30 s later would repair it.
 * Each pair of members probes each other about once per member count in seconds, so a missed
 * update is fetched from its owner within a few seconds instead.
 */
export const ownVersionDigest = (ctx: NodeContext): Uint8Array[] => {
  const self = ctx.self;
  if (self.version === null || self.app === null || ctx.leaving) return [];
  if (ctx.digest?.seq !== self.version.seq || ctx.digest.boot !== self.version.boot) {
    ctx.digest = {
      ...self.version,
      bytes: encodeMessage({ t: T.stateVer, name: self.name, version: self.version }),
    };
  }
  return [ctx.digest.bytes];
};

/**
 * Someone holds a version of our own state that we never made (our previous process, started
 * with a boot id not above this one's): move our boot past it, announce it, and re-issue our state.
 */
export const ownStateSeen = (ctx: NodeContext, version: StateVersion): void => {
  if (compareVersion(version, ownVersion(ctx)) <= 0) return;
  bumpBoot(ctx, version.boot);
  refute(ctx, ctx.self.inc);
};

/**
 * Take a boot id above `seenBoot`; our state, if any, is re-versioned under it. Never past
 * LIMITS.clock (as refute, membership.ts): a boot claimed at the bound is not outranked, and said.
 */
export const bumpBoot = (ctx: NodeContext, seenBoot: number): void => {
  const self = ctx.self;
  if (seenBoot < self.boot) return;
  if (seenBoot + 1 > LIMITS.clock) {
    exhausted(ctx, "boot", seenBoot);
    return;
  }
  self.boot = seenBoot + 1;
  ctx.localSeq = 0;
  if (self.app !== null) {
    self.version = { boot: self.boot, seq: ++ctx.localSeq };
    requestPublish(ctx);
  } else {
    self.version = null;
  }
};

/**
 * Apply a full state report if it is newer than what we hold (kept aside if the member is not
 * known yet); stale reports are counted. Returns true (the report is settled). `announce`:
 * gossip it on (news that arrived by gossip); false for what push-pull brought (anti-entropy
 * repairs one member, it must not restart an epidemic the cluster already had: a joiner would
 * otherwise queue every member's state at once).
 */
export const applyState = (
  ctx: NodeContext,
  name: string,
  version: StateVersion,
  state: MemberAppState,
  announce: boolean,
): boolean => {
  if (ctx.isSelf(name)) {
    ownStateSeen(ctx, version);
    return true;
  }
  const m = ctx.members.get(name);
  if (m === undefined) {
    keepOrphan(ctx, name, version, state, announce);
    return true;
  }
  if (version.boot < m.boot || !isNewer(version, m.version)) {
    ctx.stats.staleStates++;
    return true;
  }
  ctx.index.replace(name, m.app, state);
  m.version = version;
  m.app = state;
  if (version.boot > m.boot) m.boot = version.boot;
  const want = ctx.wants.get(name);
  if (want !== undefined && compareVersion(version, want.version) >= 0) ctx.wants.delete(name);
  ctx.emit({ type: "state-changed", name, version: { ...version } });
  if (announce) announceState(ctx, m);
  return true;
};

const MAX_ORPHANS = 1024;

/**
 * A report about a member we do not know yet (its alive is still on the way, common while many
 * members join): kept until its alive arrives instead of dropped, or its epidemic would stall at
 * every member that heard the report first.
 */
const keepOrphan = (
  ctx: NodeContext,
  name: string,
  version: StateVersion,
  state: MemberAppState,
  announce: boolean,
): void => {
  const held = ctx.orphans.get(name);
  if (held !== undefined && !isNewer(version, held.version)) return;
  ctx.orphans.delete(name);
  if (ctx.orphans.size >= MAX_ORPHANS) ctx.orphans.delete(ctx.orphans.keys().next().value as string);
  ctx.orphans.set(name, { version, state, announce });
};

/** The member is now known: apply a report that arrived before it. */
export const adoptOrphan = (ctx: NodeContext, name: string): void => {
  const o = ctx.orphans.get(name);
  if (o === undefined) return;
  ctx.orphans.delete(name);
  applyState(ctx, name, o.version, o.state, o.announce);
};

/**
 * `source` announced (`announce`: by gossip) or holds (push-pull) `version` of `name`'s state:
 * fetch it from there if it is news. Only gossiped news is gossiped on once fetched.
 */
export const noteVersion = (
  ctx: NodeContext,
  name: string,
  version: StateVersion,
  source: Address,
  announce: boolean,
): boolean => {
  if (ctx.isSelf(name)) {
    ownStateSeen(ctx, version);
    return true;
  }
  const m = ctx.members.get(name);
  if (m === undefined) return false;
  if (version.boot < m.boot || !isNewer(version, m.version)) return true;
  const want = ctx.wants.get(name);
  if (want === undefined) {
    ctx.wants.set(name, { version, sources: [source], tried: new Set(), announce });
    return true;
  }
  if (announce) want.announce = true;
  if (compareVersion(version, want.version) > 0) want.version = version;
  if (!want.tried.has(source) && !want.sources.includes(source)) want.sources.push(source);
  return true;
};

/** Open fetch streams for wanted states, grouped by source, within the concurrency bound. */
export const flushFetches = (ctx: NodeContext): void => {
  if (ctx.wants.size === 0) return;
  const groups = new Map<Address, string[]>();
  for (const [name, want] of ctx.wants) {
    if (ctx.fetching.has(name)) continue;
    let source = want.sources.shift();
    if (source === undefined) {
      const owner = ctx.members.get(name);
      const ownerUp = owner !== undefined && (owner.status === "alive" || owner.status === "suspect");
      if (!ownerUp || want.tried.has(owner.addr)) {
        ctx.wants.delete(name); // nobody left to ask; push-pull will repair it
        continue;
      }
      source = owner.addr;
    }
    let group = groups.get(source);
    if (group === undefined) {
      if (ctx.openFetches + groups.size >= ctx.config.maxConcurrentFetches) {
        want.sources.unshift(source);
        continue;
      }
      group = [];
      groups.set(source, group);
    }
    if (group.length >= MAX_NAMES_PER_FETCH) {
      want.sources.unshift(source);
      continue;
    }
    want.tried.add(source);
    group.push(name);
  }
  for (const [to, names] of groups) {
    for (const n of names) ctx.fetching.add(n);
    ctx.openFetches++;
    openStream(ctx, { kind: "fetch", to, names }, encodeMessage({ t: T.fetch, names }));
  }
};

export const openStream = (ctx: NodeContext, pending: PendingStream, request: Uint8Array): void => {
  const token = ctx.nextToken();
  ctx.streams.set(token, pending);
  ctx.stats.streamsOpened++;
  ctx.schedule(ctx.config.streamTimeoutMs, { kind: "stream-timeout", token });
  ctx.runtime.openStream(pending.to, request, token);
};

/** A fetch finished (states) or failed (null). Unsatisfied wants move on to their next source. */
export const fetchDone = (ctx: NodeContext, names: string[], states: FullState[] | null): void => {
  ctx.openFetches--;
  for (const n of names) ctx.fetching.delete(n);
  if (states !== null) {
    const asked = new Set(names);
    for (const s of states) {
      if (!asked.has(s.name)) continue;
      const announce = ctx.wants.get(s.name)?.announce ?? false;
      applyState(ctx, s.name, s.version, s.state, announce);
    }
  }
  flushFetches(ctx);
};

/** Answer a fetch: the states we hold for the names asked (ourselves included). */
export const heldStates = (ctx: NodeContext, names: readonly string[]): FullState[] => {
  const out: FullState[] = [];
  for (const name of names.slice(0, MAX_NAMES_PER_FETCH)) {
    const m = ctx.members.get(name);
    if (m?.version && m.app) out.push({ name, version: m.version, state: m.app });
  }
  return out;
};
