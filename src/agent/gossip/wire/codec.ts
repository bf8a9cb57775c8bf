/**
 * msgpack codec for the messages in messages.ts. Decoding is defensive: a packet that passed
 * authentication can still be truncated or built by a buggy or hostile key holder, so every field
 * is checked for type, range and size, and anything unexpected is an error value (never a throw,
 * never a half-decoded message). Maps, binaries and extension types never occur in valid traffic
 * and are refused by the decoder itself.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import {
  decodeAliasEntries,
  decodeAppState,
  encodeAliasEntry,
  encodeAliasRecord,
  encodeAppState,
  isAddr,
  isClock,
  isCounter,
  isName,
  isVersion,
} from "./codec-fields.ts";
import { internStrings } from "./intern.ts";
import { type FullState, type PacketMessage, STATUS_CODES, type StreamMessage, T } from "./messages.ts";
import { type ScanLimits, skipValue, splitArray } from "./msgpack-scan.ts";

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

const MAX_PACKET_MESSAGES = 512;
const MAX_STREAM_ENTRIES = 65_536;
const MAX_STRING_BYTES = 4096;
/**
 * Nesting the protocol needs: push-pull > states > state > app state > hashes > hash > refs
 * (messages.ts). Deeper is refused.
 */
export const MAX_MESSAGE_DEPTH = 7;

/**
 * What one message of `bytes` bytes may hold (msgpack-scan.ts), for every decode path alike:
 * packets, stream requests and stream replies. The object budget (arrays, strings, binaries) is
 * 4,096 plus one per 6 bytes: real traffic is sparser (a large push-pull holds one per 13 bytes,
 * measured with bench/gossip/push-pull-size.ts; a small message never needs 4,096), and it keeps
 * what a hostile message of the largest size costs to decode within a few times a real one of
 * that size (an empty array costs ~75 bytes of memory decoded, for 1 byte on the wire).
 */
export const scanLimits = (bytes: number): ScanLimits => ({
  maxDepth: MAX_MESSAGE_DEPTH,
  maxArray: MAX_STREAM_ENTRIES,
  maxStr: MAX_STRING_BYTES,
  maxObjects: 4096 + Math.floor(bytes / 6),
});

/** The same for every message of a packet (at most 1,400 bytes: the budget never binds). */
const PACKET_LIMITS = scanLimits(0);

const encoder = new Encoder({ ignoreUndefined: false });
// rawStrings: strings arrive as byte views and are interned (intern.ts); a msgpack bin is then
// indistinguishable from a string, which is harmless: it must still pass the same checks.
const decoder = new Decoder({
  rawStrings: true,
  maxStrLength: MAX_STRING_BYTES,
  maxBinLength: MAX_STRING_BYTES,
  maxMapLength: 0,
  maxExtLength: 0,
  maxArrayLength: MAX_STREAM_ENTRIES,
});

const tuple = (m: PacketMessage | StreamMessage): unknown[] => {
  switch (m.t) {
    case T.ping:
      return [m.t, m.seq, m.to];
    case T.ack:
      return [m.t, m.seq, m.from, m.inc, m.boot];
    case T.nack:
      return [m.t, m.seq];
    case T.pingReq:
      return [m.t, m.seq, m.target, m.targetAddr, m.nack];
    case T.alive:
      return m.state === undefined
        ? [m.t, m.name, m.addr, m.inc, m.boot]
        : [
            m.t,
            m.name,
            m.addr,
            m.inc,
            m.boot,
            m.state.version.boot,
            m.state.version.seq,
            encodeAppState(m.state.state),
          ];
    case T.suspect:
    case T.dead:
      return [m.t, m.name, m.inc, m.from];
    case T.state:
      return [m.t, m.name, m.version.boot, m.version.seq, encodeAppState(m.state)];
    case T.stateVer:
      return [m.t, m.name, m.version.boot, m.version.seq];
    case T.alias:
      return [m.t, m.origin, m.hlc.wall, m.hlc.logical, m.entries.map(encodeAliasEntry)];
    case T.pushPull:
      return [
        m.t,
        m.join,
        m.from,
        m.fromAddr,
        m.members.map((p) => [
          p.name,
          p.addr,
          p.inc,
          STATUS_CODES.indexOf(p.status),
          p.boot,
          p.version?.boot ?? 0,
          p.version?.seq ?? 0,
        ]),
        m.aliases.map(encodeAliasRecord),
        m.states.map(fullStateTuple),
      ];
    case T.fetch:
      return [m.t, m.names];
    case T.states:
      return [m.t, m.states.map(fullStateTuple)];
  }
};

const fullStateTuple = (s: FullState): unknown[] => [
  s.name,
  s.version.boot,
  s.version.seq,
  encodeAppState(s.state),
];

/** One message as msgpack bytes (a fresh copy: broadcasts keep theirs in the queue). */
export const encodeMessage = (m: PacketMessage | StreamMessage): Uint8Array => encoder.encode(tuple(m));

const arrayHeaderSize = (n: number): number => (n < 16 ? 1 : n < 65_536 ? 3 : 5);

/** Bytes a packet of `count` messages adds on top of the messages themselves. */
export const packetOverhead = (count: number): number => arrayHeaderSize(count);

/** A packet: a msgpack array header followed by already-encoded messages (no re-encoding). */
export const assemblePacket = (parts: readonly Uint8Array[]): Uint8Array => {
  const n = parts.length;
  let size = arrayHeaderSize(n);
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let pos: number;
  if (n < 16) {
    out[0] = 0x90 | n;
    pos = 1;
  } else {
    out[0] = 0xdc;
    out[1] = n >>> 8;
    out[2] = n & 0xff;
    pos = 3;
  }
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
};

/**
 * One message decoded to plain values, after the scan (msgpack-scan.ts) has checked it against
 * `scanLimits`: nothing is allocated for a message that is malformed, truncated, too deep or
 * declares more than its bytes hold.
 */
export const raw = (bytes: Uint8Array, maxBytes: number): Decoded<unknown> => {
  if (bytes.length > maxBytes)
    return { ok: false, error: `message of ${bytes.length} bytes exceeds ${maxBytes}` };
  if (bytes.length === 0) return { ok: false, error: "empty message" };
  if (skipValue(bytes, 0, bytes.length <= 4096 ? PACKET_LIMITS : scanLimits(bytes.length)) !== bytes.length)
    return { ok: false, error: "not one well-formed message within the limits" };
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (e) {
    return { ok: false, error: `msgpack: ${(e as Error).message}` };
  }
  if (!Array.isArray(value)) return { ok: false, error: "not an array" };
  if (!internStrings(value)) return { ok: false, error: "invalid UTF-8 in a string" };
  return { ok: true, value };
};

/** Where the messages of one UDP packet lie, undecoded (offsets, see msgpack-scan.ts). */
export const splitPacket = (bytes: Uint8Array, maxBytes: number): Decoded<number[]> => {
  if (bytes.length > maxBytes)
    return { ok: false, error: `packet of ${bytes.length} bytes exceeds ${maxBytes}` };
  const offsets = splitArray(bytes, MAX_PACKET_MESSAGES, PACKET_LIMITS);
  return offsets === null
    ? { ok: false, error: "packet is not an array of well-formed messages" }
    : { ok: true, value: offsets };
};

/** The type code of the undecoded message at `start` (its first element), or -1. */
export const messageType = (b: Uint8Array, start: number): number => {
  const h = b[start] as number;
  const t = b[start + 1];
  return h >= 0x91 && h <= 0x9f && t !== undefined && t < 0x80 ? t : -1;
};

/** Decode one message of a packet; null if it is not a valid message. */
export const decodePacketMessage = (part: Uint8Array): PacketMessage | null => {
  const r = raw(part, part.length);
  return r.ok ? packetMessage(r.value) : null;
};

/** Decode a whole packet: every message must be valid, or the whole packet is refused. */
export const decodePacket = (bytes: Uint8Array, maxBytes: number): Decoded<PacketMessage[]> => {
  const split = splitPacket(bytes, maxBytes);
  if (!split.ok) return split;
  const o = split.value;
  const out: PacketMessage[] = [];
  for (let i = 0; i + 1 < o.length; i++) {
    const m = decodePacketMessage(bytes.subarray(o[i], o[i + 1]));
    if (m === null)
      return { ok: false, error: `invalid message of type ${messageType(bytes, o[i] as number)}` };
    out.push(m);
  }
  return { ok: true, value: out };
};

const _describe = (v: unknown): string => (Array.isArray(v) ? `type ${String(v[0])}` : typeof v);

export const packetMessage = (v: unknown): PacketMessage | null => {
  if (!Array.isArray(v)) return null;
  const [t, a, b, c, d] = v;
  switch (t) {
    case T.ping:
      return v.length === 3 && isCounter(a) && isName(b) ? { t, seq: a, to: b } : null;
    case T.ack:
      return v.length === 5 && isCounter(a) && isName(b) && isClock(c) && isClock(d)
        ? { t, seq: a, from: b, inc: c, boot: d }
        : null;
    case T.nack:
      return v.length === 2 && isCounter(a) ? { t, seq: a } : null;
    case T.pingReq:
      return v.length === 5 && isCounter(a) && isName(b) && isAddr(c) && typeof d === "boolean"
        ? { t, seq: a, target: b, targetAddr: c, nack: d }
        : null;
    case T.alive: {
      if (!(isName(a) && isAddr(b) && isClock(c) && isClock(d))) return null;
      if (v.length === 5) return { t, name: a, addr: b, inc: c, boot: d };
      const state = v.length === 8 && isVersion(v[5], v[6]) ? decodeAppState(v[7]) : null;
      if (state === null) return null;
      return { t, name: a, addr: b, inc: c, boot: d, state: { version: { boot: v[5], seq: v[6] }, state } };
    }
    case T.suspect:
    case T.dead:
      return v.length === 4 && isName(a) && isClock(b) && isName(c) ? { t, name: a, inc: b, from: c } : null;
    case T.state: {
      const state = v.length === 5 && isName(a) && isVersion(b, c) ? decodeAppState(d) : null;
      return state === null ? null : { t, name: a as string, version: { boot: b, seq: c }, state };
    }
    case T.stateVer:
      return v.length === 4 && isName(a) && isVersion(b, c)
        ? { t, name: a, version: { boot: b, seq: c } }
        : null;
    case T.alias: {
      const entries =
        v.length === 5 && isName(a) && isClock(b) && isCounter(c) ? decodeAliasEntries(d) : null;
      return entries === null ? null : { t, origin: a as string, hlc: { wall: b, logical: c }, entries };
    }
    default:
      return null;
  }
};
