import { type AliasRecord, PREVIOUS_TARGETS_PER_ALIAS } from "../../../model/alias-record.ts";
/**
 * Field checks and the nested structures of the wire format (app state, alias records), shared by
 * the codec and by the core's local input validation. Limits here are the protocol's maximum
 * sizes: anything larger is refused when decoding and when set locally.
 */
import { DEPLOYMENT_STATES, type DeploymentState } from "../../../model/deployment.ts";
import { isStoreHash as isStoreHashString } from "../../../model/names.ts";
import type { HashReport, MemberAppState } from "../../../model/reports.ts";

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

export const encodeAppState = (s: MemberAppState): unknown[] => [
  s.hashes.map((h) => [h.hash, DEPLOYMENT_STATES.indexOf(h.state), h.inFlight, h.holds, h.refs]),
  s.ingress ?? null,
];

const hashReport = (v: unknown): HashReport | null => {
  if (!Array.isArray(v) || v.length !== 5) return null;
  const [hash, code, inFlight, holds, refs] = v;
  if (!isStoreHash(hash) || !isCounter(inFlight) || !isCounter(holds)) return null;
  const state: DeploymentState | undefined = typeof code === "number" ? DEPLOYMENT_STATES[code] : undefined;
  if (state === undefined) return null;
  if (!Array.isArray(refs) || refs.length > LIMITS.refsPerHash || !refs.every(isStoreHash)) return null;
  return { hash, state, inFlight, holds, refs: refs as string[] };
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
  }
  if (s.ingress !== undefined && !isAddr(s.ingress))
    return `ingress must be "ip:port", got ${JSON.stringify(s.ingress)}`;
  return null;
};

/** One alias of a write: [name, hash | nil] or, with previous targets, [name, hash | nil, [hash, ...]]. */
export interface AliasEntry {
  name: string;
  hash: string | null;
  previous: string[];
}

const isPrevious = (v: unknown): v is string[] =>
  Array.isArray(v) && v.length <= LIMITS.previousPerAlias && v.every(isStoreHash);

/** An empty `previous` is left out, so writes without history decode on agents that predate it. */
export const encodeAliasEntry = (e: AliasEntry): unknown[] =>
  e.previous.length > 0 ? [e.name, e.hash, e.previous] : [e.name, e.hash];

export const decodeAliasEntries = (v: unknown): AliasEntry[] | null => {
  if (!Array.isArray(v) || v.length === 0 || v.length > LIMITS.aliasEntriesPerWrite) return null;
  const out: AliasEntry[] = [];
  for (const e of v) {
    if (!Array.isArray(e) || (e.length !== 2 && e.length !== 3)) return null;
    const [name, hash, previous = []] = e;
    if (!isAliasName(name) || !(hash === null || isStoreHash(hash)) || !isPrevious(previous)) return null;
    out.push({ name, hash, previous });
  }
  return out;
};

export const encodeAliasRecord = (r: AliasRecord): unknown[] => {
  const head = [r.name, r.hash, r.hlc.wall, r.hlc.logical, r.origin];
  return r.previous.length > 0 ? [...head, r.previous] : head;
};

export const decodeAliasRecord = (v: unknown): AliasRecord | null => {
  if (!Array.isArray(v) || (v.length !== 5 && v.length !== 6)) return null;
  const [name, hash, wall, logical, origin, previous = []] = v;
  if (!isAliasName(name) || !(hash === null || isStoreHash(hash)) || !isPrevious(previous)) return null;
  if (!isClock(wall) || !isCounter(logical) || !isName(origin)) return null;
  return { name, hash, hlc: { wall, logical }, origin, previous };
};
