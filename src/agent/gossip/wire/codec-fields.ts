import {
  type AliasRecord,
  type AliasTarget,
  MAX_SPLIT_TARGETS,
  PREVIOUS_TARGETS_PER_ALIAS,
  splitProblem,
} from "../../../model/alias-record.ts";
/**
 * Field checks and the nested structures of the wire format (app state, alias records), shared by
 * the codec and by the core's local input validation. Limits here are the protocol's maximum
 * sizes: anything larger is refused when decoding and when set locally.
 */
import { DEPLOYMENT_STATES, type DeploymentState } from "../../../model/deployment.ts";
import { isStoreHash as isStoreHashString } from "../../../model/names.ts";
import type { HashReport, MemberAppState } from "../../../model/reports.ts";
import { decodeCounts, encodeCounts } from "../../../model/request-stats.ts";
import {
  ROLLOUT_KINDS,
  ROLLOUT_STATUSES,
  type RolloutState,
  rolloutProblem,
} from "../../../model/rollout-state.ts";

export const LIMITS = {
  nameChars: 128,
  addrChars: 64,
  aliasNameChars: 253,
  hashesPerMember: 4096,
  refsPerHash: 256,
  aliasEntriesPerWrite: 64,
  /** names in one state fetch */
  namesPerFetch: 256,
  /** previous targets an alias record carries (retention keep-last counts up to this + 1) */
  previousPerAlias: PREVIOUS_TARGETS_PER_ALIAS,
  /** hashes of a weighted alias */
  splitTargets: MAX_SPLIT_TARGETS,
  /** a service name and a reason in a hash report */
  serviceChars: 128,
  whyChars: 160,
  /** in-flight and hold counts, probe sequence numbers, the HLC's logical part (model/hlc.ts carries) */
  counter: 0xffff_ffff,
  /**
   * Incarnations, boot ids, state versions (both parts) and HLC walls. They start at a wall clock
   * in milliseconds (a boot id is Date.now() at start: about 2^40.7 in 2025, so 2^32 would not do)
   * and an incarnation grows by one per refutation: 2^52 (year 144,683 as a clock) leaves about
   * 4.5e15 refutations of room, more than any member makes, and sits a factor of two under the
   * last safe integer, so `bound + 1` is still exact and every comparison near the bound is too.
   * Refused above it when decoding; a member never raises its own past it (membership.ts refute,
   * state-sync.ts bumpBoot): a value at the bound can only come from a replay of one or a key
   * holder, and the member then says so (event "incarnation-exhausted") instead of overflowing.
   */
  clock: 2 ** 52,
} as const;

const ADDR = /^[^\s]{1,58}:([1-9][0-9]{0,4})$/;

export const isUint = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
/** uint32: in-flight and hold counts, probe sequence numbers, HLC logical counters. */
export const isCounter = (v: unknown): v is number => isUint(v) && v <= LIMITS.counter;
/** An incarnation, boot id, state version part or HLC wall: at most LIMITS.clock. */
export const isClock = (v: unknown): v is number => isUint(v) && v <= LIMITS.clock;
export const isName = (v: unknown): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= LIMITS.nameChars;
/** `host:port` with a port 1-65535 (gossip addresses; an ingress must also pass addresses.ts). */
export const isAddr = (v: unknown): v is string => {
  if (typeof v !== "string" || v.length > LIMITS.addrChars) return false;
  const m = ADDR.exec(v);
  return m !== null && Number(m[1]) <= 65535;
};
/** A store hash (src/model/names.ts), of a field that may hold anything. */
export const isStoreHash = (v: unknown): v is string => typeof v === "string" && isStoreHashString(v);
export const isAliasName = (v: unknown): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= LIMITS.aliasNameChars;
/** A state version: boot and seq are at most LIMITS.clock and (0, 0) is reserved for "none". */
export const isVersion = (boot: unknown, seq: unknown): boot is number =>
  isClock(boot) && isClock(seq) && (boot > 0 || seq > 0);

/**
 * A hash report: [hash, state code, in flight, holds, refs] and, when any is known, the optional
 * tail [service | nil, why | nil, counts | nil, stickyUntil | nil] (request-stats.ts encodes the
 * counts: a few numbers and the non-empty latency buckets).
 */
const encodeHashReport = (h: HashReport): unknown[] => {
  const head: unknown[] = [h.hash, DEPLOYMENT_STATES.indexOf(h.state), h.inFlight, h.holds, h.refs];
  if (h.service === undefined && h.why === undefined && h.counts === undefined && h.stickyUntil === undefined)
    return head;
  head.push(
    h.service ?? null,
    h.why ?? null,
    h.counts === undefined ? null : encodeCounts(h.counts),
    h.stickyUntil ?? null,
  );
  return head;
};

export const encodeAppState = (s: MemberAppState): unknown[] => [
  s.hashes.map(encodeHashReport),
  s.ingress ?? null,
];

const isText = (v: unknown, max: number): v is string => typeof v === "string" && v.length <= max;

const hashReport = (v: unknown): HashReport | null => {
  if (!Array.isArray(v) || (v.length !== 5 && v.length !== 9)) return null;
  const [hash, code, inFlight, holds, refs, service, why, counts, stickyUntil] = v;
  if (!isStoreHash(hash) || !isCounter(inFlight) || !isCounter(holds)) return null;
  const state: DeploymentState | undefined = typeof code === "number" ? DEPLOYMENT_STATES[code] : undefined;
  if (state === undefined) return null;
  if (!Array.isArray(refs) || refs.length > LIMITS.refsPerHash || !refs.every(isStoreHash)) return null;
  const report: HashReport = { hash, state, inFlight, holds, refs: refs as string[] };
  if (v.length === 5) return report;
  if (service !== null) {
    if (!isText(service, LIMITS.serviceChars)) return null;
    report.service = service;
  }
  if (why !== null) {
    if (!isText(why, LIMITS.whyChars)) return null;
    report.why = why;
  }
  if (counts !== null) {
    const decoded = decodeCounts(counts);
    if (decoded === null) return null;
    report.counts = decoded;
  }
  if (stickyUntil !== null) {
    if (!isClock(stickyUntil)) return null;
    report.stickyUntil = stickyUntil;
  }
  return report;
};

export const decodeAppState = (v: unknown): MemberAppState | null => {
  if (!Array.isArray(v) || v.length !== 2) return null;
  const [rawHashes, ingress] = v;
  if (!Array.isArray(rawHashes) || rawHashes.length > LIMITS.hashesPerMember) return null;
  const hashes: HashReport[] = [];
  for (const h of rawHashes) {
    const r = hashReport(h);
    if (r === null) return null;
    hashes.push(r);
  }
  if (ingress === null) return { hashes };
  return isAddr(ingress) ? { hashes, ingress } : null;
};

/** Why a locally supplied state is refused, or null if it is valid. */
export const appStateProblem = (s: MemberAppState): string | null => {
  if (s.hashes.length > LIMITS.hashesPerMember) return `more than ${LIMITS.hashesPerMember} hashes`;
  const seen = new Set<string>();
  for (const h of s.hashes) {
    if (!isStoreHash(h.hash)) return `not a store hash: ${JSON.stringify(h.hash)}`;
    if (seen.has(h.hash)) return `hash reported twice: ${h.hash}`;
    seen.add(h.hash);
    if (!DEPLOYMENT_STATES.includes(h.state)) return `unknown deployment state ${JSON.stringify(h.state)}`;
    if (!isCounter(h.inFlight) || !isCounter(h.holds)) return `inFlight/holds of ${h.hash} must be uint32`;
    if (h.refs.length > LIMITS.refsPerHash) return `more than ${LIMITS.refsPerHash} refs on ${h.hash}`;
    const bad = h.refs.find((r) => !isStoreHash(r));
    if (bad !== undefined) return `ref of ${h.hash} is not a store hash: ${JSON.stringify(bad)}`;
    if (h.service !== undefined && !isText(h.service, LIMITS.serviceChars))
      return `service name of ${h.hash} longer than ${LIMITS.serviceChars}`;
    if (h.why !== undefined && !isText(h.why, LIMITS.whyChars))
      return `reason of ${h.hash} longer than ${LIMITS.whyChars}`;
    if (h.stickyUntil !== undefined && !isClock(h.stickyUntil))
      return `stickyUntil of ${h.hash} is not a time`;
  }
  if (s.ingress !== undefined && !isAddr(s.ingress))
    return `ingress must be "ip:port", got ${JSON.stringify(s.ingress)}`;
  return null;
};

/**
 * One alias of a write: [name, hash | nil], with previous targets [name, hash | nil, [hash, ...]],
 * and a weighted or rollout write [name, hash | nil, previous, split | nil, rollout | nil].
 */
export interface AliasEntry {
  name: string;
  hash: string | null;
  previous: string[];
  split?: AliasTarget[];
  rollout?: RolloutState;
}

const isPrevious = (v: unknown): v is string[] =>
  Array.isArray(v) && v.length <= LIMITS.previousPerAlias && v.every(isStoreHash);

const encodeSplit = (split: readonly AliasTarget[]): unknown[] => split.map((t) => [t.hash, t.weight]);

const decodeSplit = (v: unknown): AliasTarget[] | null => {
  if (!Array.isArray(v) || v.length > LIMITS.splitTargets) return null;
  const out: AliasTarget[] = [];
  for (const t of v) {
    if (!Array.isArray(t) || t.length !== 2) return null;
    const [hash, weight] = t;
    if (!isStoreHash(hash) || !isUint(weight)) return null;
    out.push({ hash, weight });
  }
  return splitProblem(out, isStoreHashString) === null ? out : null;
};

/** [kind, from, to, steps, step, stepSince, stepTimeMs, intervalMs, maxErrorRate, maxP99Ratio, minRequests, status, note, startedAt] */
const encodeRollout = (r: RolloutState): unknown[] => [
  ROLLOUT_KINDS.indexOf(r.kind),
  r.from,
  r.to,
  r.steps,
  r.step,
  r.stepSince,
  r.stepTimeMs,
  r.intervalMs,
  r.limits.maxErrorRate,
  r.limits.maxP99Ratio,
  r.limits.minRequests,
  ROLLOUT_STATUSES.indexOf(r.status),
  r.note,
  r.startedAt,
];

const decodeRollout = (v: unknown): RolloutState | null => {
  if (!Array.isArray(v) || v.length !== 14) return null;
  const [
    kind,
    from,
    to,
    steps,
    step,
    stepSince,
    stepTimeMs,
    intervalMs,
    maxErrorRate,
    maxP99Ratio,
    minRequests,
  ] = v;
  const [status, note, startedAt] = v.slice(11);
  if (!Array.isArray(steps) || steps.length > 16) return null;
  const r = {
    kind: typeof kind === "number" ? ROLLOUT_KINDS[kind] : undefined,
    from,
    to,
    steps,
    step,
    stepSince,
    stepTimeMs,
    intervalMs,
    limits: { maxErrorRate, maxP99Ratio, minRequests },
    status: typeof status === "number" ? ROLLOUT_STATUSES[status] : undefined,
    note,
    startedAt,
  } as RolloutState;
  return rolloutProblem(r, isStoreHashString) === null ? r : null;
};

/** An empty `previous` is left out, so writes without history decode on agents that predate it. */
export const encodeAliasEntry = (e: AliasEntry): unknown[] => {
  if (e.split !== undefined || e.rollout !== undefined)
    return [
      e.name,
      e.hash,
      e.previous,
      e.split === undefined ? null : encodeSplit(e.split),
      e.rollout === undefined ? null : encodeRollout(e.rollout),
    ];
  return e.previous.length > 0 ? [e.name, e.hash, e.previous] : [e.name, e.hash];
};

/** The split and rollout of an entry or record: undefined if either is present and malformed. */
const decodeExtras = (
  split: unknown,
  rollout: unknown,
): { split?: AliasTarget[]; rollout?: RolloutState } | undefined => {
  const out: { split?: AliasTarget[]; rollout?: RolloutState } = {};
  if (split !== null && split !== undefined) {
    const s = decodeSplit(split);
    if (s === null) return undefined;
    out.split = s;
  }
  if (rollout !== null && rollout !== undefined) {
    const r = decodeRollout(rollout);
    if (r === null) return undefined;
    out.rollout = r;
  }
  return out;
};

export const decodeAliasEntries = (v: unknown): AliasEntry[] | null => {
  if (!Array.isArray(v) || v.length === 0 || v.length > LIMITS.aliasEntriesPerWrite) return null;
  const out: AliasEntry[] = [];
  for (const e of v) {
    if (!Array.isArray(e) || e.length < 2 || e.length > 5 || e.length === 4) return null;
    const [name, hash, previous = [], split, rollout] = e;
    if (!isAliasName(name) || !(hash === null || isStoreHash(hash)) || !isPrevious(previous)) return null;
    const extras = decodeExtras(split, rollout);
    if (extras === undefined || !consistent(hash, extras.split)) return null;
    out.push({ name, hash, previous, ...extras });
  }
  return out;
};

/** A split's record names its heaviest target as its hash (older agents route by that alone). */
const consistent = (hash: string | null, split: AliasTarget[] | undefined): boolean =>
  split === undefined || (hash !== null && split.some((t) => t.hash === hash));

export const encodeAliasRecord = (r: AliasRecord): unknown[] => {
  const head = [r.name, r.hash, r.hlc.wall, r.hlc.logical, r.origin];
  if (r.split !== undefined || r.rollout !== undefined)
    return [
      ...head,
      r.previous,
      r.split === undefined ? null : encodeSplit(r.split),
      r.rollout === undefined ? null : encodeRollout(r.rollout),
    ];
  return r.previous.length > 0 ? [...head, r.previous] : head;
};

export const decodeAliasRecord = (v: unknown): AliasRecord | null => {
  if (!Array.isArray(v) || (v.length !== 5 && v.length !== 6 && v.length !== 8)) return null;
  const [name, hash, wall, logical, origin, previous = [], split, rollout] = v;
  if (!isAliasName(name) || !(hash === null || isStoreHash(hash)) || !isPrevious(previous)) return null;
  if (!isClock(wall) || !isCounter(logical) || !isName(origin)) return null;
  const extras = decodeExtras(split, rollout);
  if (extras === undefined || !consistent(hash, extras.split)) return null;
  return { name, hash, hlc: { wall, logical }, origin, previous, ...extras };
};

/** The entry that carries a record in an alias write message. */
export const aliasEntryOf = (r: AliasRecord): AliasEntry => {
  const e: AliasEntry = { name: r.name, hash: r.hash, previous: r.previous };
  if (r.split !== undefined) e.split = r.split;
  if (r.rollout !== undefined) e.rollout = r.rollout;
  return e;
};

/** Why a local write's split or rollout would be refused by every peer's decoder, or null. */
export const aliasWriteProblem = (w: {
  hash: string | null;
  split?: AliasTarget[] | undefined;
  rollout?: RolloutState | undefined;
}): string | null => {
  if (w.split !== undefined) {
    const p = splitProblem(w.split, isStoreHashString);
    if (p !== null) return p;
    if (!consistent(w.hash, w.split)) return "a weighted alias's hash must be one of its targets";
  }
  return w.rollout === undefined ? null : rolloutProblem(w.rollout, isStoreHashString);
};
