/**
 * Decoding of stream messages (push-pull, fetch, states, and the fallback ping and ack), with the
 * same defensive checks as packets: a full cluster state is large, so every entry is validated.
 */
import { type Decoded, packetMessage, raw } from "./codec.ts";
import {
  decodeAliasRecord,
  decodeAppState,
  isAddr,
  isClock,
  isName,
  isVersion,
  LIMITS,
} from "./codec-fields.ts";
import { type FullState, type PushPullMember, STATUS_CODES, type StreamMessage, T } from "./messages.ts";

/** Decode the one message of a stream frame. */
export const decodeStream = (bytes: Uint8Array, maxBytes: number): Decoded<StreamMessage> => {
  const r = raw(bytes, maxBytes);
  if (!r.ok) return r;
  const m = streamMessage(r.value);
  return m === null
    ? { ok: false, error: `invalid stream message ${describe(r.value)}` }
    : { ok: true, value: m };
};

const describe = (v: unknown): string => (Array.isArray(v) ? `type ${String(v[0])}` : typeof v);

const streamMessage = (v: unknown): StreamMessage | null => {
  if (!Array.isArray(v)) return null;
  const t = v[0];
  if (t === T.ping || t === T.ack) return packetMessage(v) as StreamMessage | null;
  if (t === T.fetch) {
    const names = v[1];
    if (
      v.length !== 2 ||
      !Array.isArray(names) ||
      names.length > LIMITS.namesPerFetch ||
      !names.every(isName)
    )
      return null;
    return { t, names: names as string[] };
  }
  if (t === T.states) {
    const states = v.length === 2 ? fullStates(v[1]) : null;
    return states === null ? null : { t, states };
  }
  if (t !== T.pushPull || v.length !== 7) return null;
  const [, join, from, fromAddr, rawMembers, rawAliases, rawStates] = v;
  if (typeof join !== "boolean" || !isName(from) || !isAddr(fromAddr)) return null;
  if (!Array.isArray(rawMembers) || !Array.isArray(rawAliases)) return null;
  const members: PushPullMember[] = [];
  for (const m of rawMembers) {
    const p = member(m);
    if (p === null) return null;
    members.push(p);
  }
  const aliases = [];
  for (const a of rawAliases) {
    const rec = decodeAliasRecord(a);
    if (rec === null) return null;
    aliases.push(rec);
  }
  const states = fullStates(rawStates);
  if (states === null) return null;
  return { t, join, from, fromAddr, members, aliases, states };
};

const member = (v: unknown): PushPullMember | null => {
  if (!Array.isArray(v) || v.length !== 7) return null;
  const [name, addr, inc, code, boot, vBoot, vSeq] = v;
  if (!isName(name) || !isAddr(addr) || !isClock(inc) || !isClock(boot) || !isClock(vBoot) || !isClock(vSeq))
    return null;
  const status = typeof code === "number" ? STATUS_CODES[code] : undefined;
  if (status === undefined) return null;
  const version = vBoot === 0 && vSeq === 0 ? null : { boot: vBoot, seq: vSeq };
  return { name, addr, inc, status, boot, version };
};

const fullStates = (v: unknown): FullState[] | null => {
  if (!Array.isArray(v)) return null;
  const out: FullState[] = [];
  for (const s of v) {
    if (!Array.isArray(s) || s.length !== 4) return null;
    const [name, boot, seq, rawState] = s;
    if (!isName(name) || !isVersion(boot, seq)) return null;
    const state = decodeAppState(rawState);
    if (state === null) return null;
    out.push({ name, version: { boot, seq }, state });
  }
  return out;
};
