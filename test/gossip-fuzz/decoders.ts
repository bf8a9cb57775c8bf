/**
 * A fuzz of every gossip decode path with the key known: what a key holder (or a bug in a peer)
 * could send. Each case is a plaintext, hostile but sealed with the cluster key, fed where the
 * adapter feeds real traffic after opening it:
 *
 * - a UDP packet: sealed, opened, GossipNode.handlePacket (split, seen-cache, decode, dispatch);
 * - a stream request: framed (sealed header and body, stream-frame.ts), read by a FrameReader in
 *   random pieces, opened, GossipNode.handleStreamRequest (decode, answer);
 * - a stream reply to a push-pull the node opened: GossipNode.handleStreamResponse;
 * - and the decoders alone (decodePacket, decodeStream).
 *
 * Plaintexts: random msgpack with lying lengths (array and string headers far beyond the bytes),
 * deep nesting, maps and extensions, every integer and float width at and around every bound
 * (2^32, 2^52, 2^53, 2^64, negative, NaN); messages of every type with fields drawn from valid
 * and hostile values (names of the node itself, incarnations at the bound); mutations of real
 * messages (bit flips, inflated headers, truncation, splices) and well-formed real messages with
 * hostile values in some fields. A fresh node every 256 cases keeps
 * what valid messages add to its tables from growing with the run.
 *
 * What is checked per case: nothing throws (the decoders return error values; the node counts
 * and drops what it refuses), everything the node sends in answer decodes again, and after each
 * case the node still answers a ping with an ack that decodes (a counter it let cross a bound
 * would show here). The caller checks time per case and the process's RSS.
 * Used by fuzz-decoders.test.ts (10,000+ cases) and bench/fuzz/gossip.ts (millions).
 */
import { decode, Encoder } from "@msgpack/msgpack";
import { GossipNode } from "../../src/agent/gossip/core.ts";
import type { Runtime } from "../../src/agent/gossip/types.ts";
import { assemblePacket, decodePacket, encodeMessage } from "../../src/agent/gossip/wire/codec.ts";
import { LIMITS } from "../../src/agent/gossip/wire/codec-fields.ts";
import { decodeStream } from "../../src/agent/gossip/wire/codec-stream.ts";
import { Keyring } from "../../src/agent/gossip/wire/crypto.ts";
import { type PacketMessage, type StreamMessage, T } from "../../src/agent/gossip/wire/messages.ts";
import {
  FRAME_REPLY,
  FRAME_REQUEST,
  FrameReader,
  keyringFrameSeal,
} from "../../src/agent/gossip/wire/stream-frame.ts";
import { randomInt, Xoshiro128 } from "../../src/lib/prng.ts";
import { fakeHash, fakeRollout, fakeState } from "../support/gossip/fixtures.ts";

const SELF = "me";
const SELF_ADDR = "10.0.0.1:7946";
const PEER_ADDR = "10.0.0.2:7946";
const BOOT = 1_700_000_000_000;
const MAX_STREAM = 1 << 20;

// ---- values ----------------------------------------------------------------------------------

const EDGE_NUMBERS = [
  0,
  1,
  127,
  128,
  255,
  256,
  65_535,
  65_536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  BOOT,
  LIMITS.clock - 1,
  LIMITS.clock,
  LIMITS.clock + 1,
  2 ** 53 - 2,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  2 ** 64 - 1,
  -1,
  -128,
  -(2 ** 31),
  -(2 ** 53 - 1),
  1.5,
  -0,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  1e300,
];

class Writer {
  bytes: number[] = [];
  u8(...b: number[]): void {
    for (const x of b) this.bytes.push(x & 0xff);
  }
  u16(n: number): void {
    this.u8(n >>> 8, n);
  }
  u32(n: number): void {
    this.u8(n >>> 24, n >>> 16, n >>> 8, n);
  }
  raw(b: Uint8Array): void {
    for (const x of b) this.bytes.push(x);
  }
}

/** Msgpack, written by hand so that it can lie. */
class Hostile {
  constructor(private readonly rng: Xoshiro128) {}

  int(n: number): number {
    return randomInt(this.rng, n);
  }

  chance(p: number): boolean {
    return this.rng.nextU32() / 4294967296 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  number(w: Writer): void {
    const v = this.chance(0.5) ? this.pick(EDGE_NUMBERS) : this.int(1 << 20);
    const form = this.int(8);
    if (!Number.isFinite(v) || !Number.isInteger(v) || form === 0) {
      w.u8(0xcb);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v);
      w.raw(b);
    } else if (form === 1) {
      w.u8(0xca);
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, v);
      w.raw(b);
    } else if (v < 0) {
      w.u8(0xd3);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigInt64(0, BigInt(Math.max(v, -(2 ** 63))));
      w.raw(b);
    } else if (v < 128 && form < 5) {
      w.u8(v);
    } else {
      w.u8(0xcf); // uint64, whatever the value's width: also a valid encoding
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, BigInt(Math.min(v, 2 ** 64 - 1)));
      w.raw(b);
    }
  }

  text(): Uint8Array {
    switch (this.int(6)) {
      case 0:
        return new TextEncoder().encode(SELF);
      case 1:
        return new TextEncoder().encode(fakeHash(this.int(50)));
      case 2:
        return new TextEncoder().encode(this.pick([SELF_ADDR, PEER_ADDR, "127.0.0.1:22", "[::1]:1", "x:0"]));
      case 3:
        return Uint8Array.from({ length: this.int(8) }, () => 0x80 + this.int(128)); // invalid UTF-8
      case 4:
        return new TextEncoder().encode(`n${this.int(20)}`);
      default:
        return Uint8Array.from({ length: this.int(300) }, () => 0x20 + this.int(95));
    }
  }

  string(w: Writer): void {
    const s = this.text();
    const lie = this.chance(0.1);
    const len = lie ? this.pick([0xff, 0xffff, 0xffff_ffff, s.length + 1 + this.int(100)]) : s.length;
    const bin = this.chance(0.1);
    if (len < 32 && !bin && this.chance(0.7)) w.u8(0xa0 | len);
    else if (len < 256 && this.chance(0.6)) {
      w.u8(bin ? 0xc4 : 0xd9, len);
    } else if (len < 65_536 && this.chance(0.7)) {
      w.u8(bin ? 0xc5 : 0xda);
      w.u16(len);
    } else {
      w.u8(bin ? 0xc6 : 0xdb);
      w.u32(len);
    }
    w.raw(s);
  }

  arrayHeader(w: Writer, n: number): void {
    if (n < 16 && this.chance(0.8)) w.u8(0x90 | n);
    else if (n < 65_536 && this.chance(0.8)) {
      w.u8(0xdc);
      w.u16(n);
    } else {
      w.u8(0xdd);
      w.u32(n);
    }
  }

  /** A random value; `budget` bounds how much is written. */
  value(w: Writer, depth: number, budget: { n: number }): void {
    budget.n--;
    const k = budget.n <= 0 ? this.int(4) : this.int(14);
    switch (k) {
      case 0:
        this.number(w);
        return;
      case 1:
        w.u8(this.pick([0xc0, 0xc2, 0xc3]));
        return;
      case 2:
        this.string(w);
        return;
      case 3:
        w.u8(this.int(128));
        return;
      case 4: {
        // an array whose declared length may be a lie
        const n = this.int(depth > 6 ? 3 : 9);
        const declared = this.chance(0.15) ? this.pick([0xffff, 0xffff_ffff, n + 1 + this.int(1000)]) : n;
        this.arrayHeader(w, declared);
        for (let i = 0; i < n; i++) this.value(w, depth + 1, budget);
        return;
      }
      case 5: {
        // a chain of array headers: the deep nesting of the stream attack
        const depthOf = this.pick([8, 9, 33, 300]);
        for (let i = 0; i < depthOf && budget.n > 0; i++, budget.n--)
          this.arrayHeader(w, this.pick([1, 0xffff]));
        return;
      }
      case 6:
        w.u8(this.pick([0x80, 0x81, 0xde, 0xdf, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9, 0xc1]));
        if (this.chance(0.5)) w.u8(this.int(256), this.int(256), this.int(256), this.int(256));
        return;
      case 7:
        w.raw(this.pick(pool()));
        return;
      case 8:
        this.message(w, budget);
        return;
      default:
        this.number(w);
    }
  }

  /** A message of a real type with each field valid or hostile. */
  message(w: Writer, budget: { n: number }): void {
    const t = this.pick([
      T.ping,
      T.ack,
      T.nack,
      T.pingReq,
      T.alive,
      T.suspect,
      T.dead,
      T.state,
      T.stateVer,
      T.alias,
      T.pushPull,
      T.fetch,
      T.states,
    ]);
    const arity = this.chance(0.85) ? (ARITY[t] ?? 4) : this.int(10);
    this.arrayHeader(w, arity);
    w.u8(t);
    for (let i = 1; i < arity; i++) {
      const r = this.int(10);
      if (r < 3) this.number(w);
      else if (r < 6) this.string(w);
      else if (r < 7) w.u8(this.pick([0xc0, 0xc2, 0xc3]));
      else if (r < 8) w.raw(this.pick(pool()));
      else this.value(w, 1, budget);
    }
  }
}

const ARITY: Record<number, number> = {
  [T.ping]: 3,
  [T.ack]: 5,
  [T.nack]: 2,
  [T.pingReq]: 5,
  [T.alive]: 5,
  [T.suspect]: 4,
  [T.dead]: 4,
  [T.state]: 5,
  [T.stateVer]: 4,
  [T.alias]: 5,
  [T.pushPull]: 7,
  [T.fetch]: 2,
  [T.states]: 2,
};

// ---- real messages to mutate -----------------------------------------------------------------

let realMessages: Uint8Array[] | null = null;

/** Encoded valid messages of every type, some about the fuzzed node itself. */
const pool = (): Uint8Array[] => {
  if (realMessages !== null) return realMessages;
  const H = fakeHash(1);
  const msgs: (PacketMessage | StreamMessage)[] = [
    { t: T.ping, seq: 7, to: SELF },
    { t: T.ack, seq: 7, from: "n1", inc: BOOT, boot: BOOT },
    { t: T.nack, seq: 9 },
    { t: T.pingReq, seq: 3, target: "n1", targetAddr: PEER_ADDR, nack: true },
    { t: T.alive, name: "n1", addr: PEER_ADDR, inc: BOOT, boot: BOOT },
    {
      t: T.alive,
      name: "n2",
      addr: "10.0.0.3:7946",
      inc: BOOT + 1,
      boot: BOOT,
      state: { version: { boot: BOOT, seq: 1 }, state: fakeState(0, 2, { refs: 1, ingress: "10.0.0.3:80" }) },
    },
    { t: T.suspect, name: SELF, inc: BOOT, from: "n1" },
    { t: T.suspect, name: SELF, inc: 2 ** 52, from: "n1" },
    { t: T.dead, name: SELF, inc: BOOT, from: "n1" },
    { t: T.alive, name: SELF, addr: SELF_ADDR, inc: BOOT + 1, boot: BOOT + 1 },
    { t: T.dead, name: "n1", inc: BOOT, from: "n2" },
    { t: T.state, name: "n1", version: { boot: BOOT, seq: 2 }, state: fakeState(10, 3, { refs: 2 }) },
    { t: T.state, name: "n2", version: { boot: BOOT, seq: 2 }, state: fakeState(40, 2, { extras: true }) },
    {
      t: T.alias,
      origin: "n2",
      hlc: { wall: BOOT, logical: 3 },
      entries: [
        {
          name: "prod",
          hash: H,
          previous: [],
          split: [
            { hash: H, weight: 75 },
            { hash: fakeHash(2), weight: 25 },
          ],
          rollout: fakeRollout(H, fakeHash(2)),
        },
      ],
    },
    { t: T.stateVer, name: SELF, version: { boot: BOOT, seq: 5 } },
    {
      t: T.alias,
      origin: "n1",
      hlc: { wall: BOOT, logical: 2 },
      entries: [{ name: "prod", hash: H, previous: [fakeHash(2)] }],
    },
    {
      t: T.pushPull,
      join: true,
      from: "n1",
      fromAddr: PEER_ADDR,
      members: [
        {
          name: "n1",
          addr: PEER_ADDR,
          inc: BOOT,
          status: "alive",
          boot: BOOT,
          version: { boot: BOOT, seq: 1 },
        },
        { name: SELF, addr: SELF_ADDR, inc: BOOT, status: "dead", boot: BOOT, version: null },
      ],
      aliases: [{ name: "prod", hash: H, hlc: { wall: BOOT, logical: 0 }, origin: "n1", previous: [] }],
      states: [{ name: "n1", version: { boot: BOOT, seq: 1 }, state: fakeState(20, 4, { extras: true }) }],
    },
    { t: T.fetch, names: ["n1", SELF] },
    { t: T.states, states: [{ name: "n1", version: { boot: BOOT, seq: 3 }, state: fakeState(30, 2) }] },
  ];
  realMessages = msgs.map(encodeMessage);
  return realMessages;
};

const HEADER_BYTES = [0xdc, 0xdd, 0xdb, 0xda, 0xc6, 0xde, 0xdf, 0xcf, 0xd3, 0xcb, 0xc1, 0x9f, 0xbf, 0xc0];

const mutate = (h: Hostile, src: Uint8Array): Uint8Array => {
  const b = Array.from(src);
  const edits = 1 + h.int(4);
  for (let e = 0; e < edits && b.length > 0; e++) {
    const at = h.int(b.length);
    switch (h.int(7)) {
      case 0:
        b[at] = (b[at] as number) ^ (1 << h.int(8));
        break;
      case 1:
        b[at] = h.pick(HEADER_BYTES);
        break;
      case 2:
        b.splice(at, 0, h.pick([0xdc, 0xdd]), 0xff, 0xff, ...(h.chance(0.5) ? [0xff, 0xff] : []));
        break;
      case 3:
        b.length = at;
        break;
      case 4:
        b.splice(at, 0, ...b.slice(h.int(b.length), h.int(b.length) + 1 + h.int(64)));
        break;
      case 5:
        b.splice(at, 0, ...Array.from({ length: 1 + h.int(16) }, () => h.int(256)));
        break;
      default:
        b.splice(at, 1 + h.int(8));
    }
  }
  return Uint8Array.from(b);
};

let realTuples: unknown[][] | null = null;
const encoder = new Encoder();

/**
 * A real message, well-formed msgpack, with some leaves replaced by hostile values: numbers at
 * and past every bound, our own name, other types, arrays where scalars go and the reverse.
 */
const tweak = (h: Hostile): Uint8Array => {
  realTuples ??= pool().map((b) => decode(b) as unknown[]);
  const copy = structuredClone(h.pick(realTuples));
  const edits = 1 + h.int(3);
  for (let e = 0; e < edits; e++) {
    let at: unknown[] = copy;
    let i = h.int(at.length);
    while (Array.isArray(at[i]) && (at[i] as unknown[]).length > 0 && h.chance(0.7)) {
      at = at[i] as unknown[];
      i = h.int(at.length);
    }
    const r = h.int(8);
    at[i] =
      r < 4
        ? h.pick(EDGE_NUMBERS)
        : r === 4
          ? SELF
          : r === 5
            ? h.pick([null, true, "", "x".repeat(5000), fakeHash(h.int(9))])
            : r === 6
              ? [h.pick(EDGE_NUMBERS)]
              : Array.from({ length: h.int(70) }, () => h.pick(EDGE_NUMBERS));
  }
  return encoder.encode(copy);
};

/** One hostile plaintext message (or, `packet`, a packet of them). */
const plaintext = (h: Hostile, packet: boolean): Uint8Array => {
  const kind = h.int(13);
  if (kind >= 10) {
    if (!packet) return tweak(h);
    return assemblePacket(
      Array.from({ length: 1 + h.int(3) }, () => (h.chance(0.5) ? tweak(h) : h.pick(pool()))),
    );
  }
  if (kind < 3) return mutate(h, packet ? assemblePacket([h.pick(pool()), h.pick(pool())]) : h.pick(pool()));
  const w = new Writer();
  const budget = { n: 20 + h.int(h.chance(0.05) ? 3000 : 200) };
  if (packet) {
    const n = h.chance(0.1) ? h.pick([0, 0xffff, 513]) : 1 + h.int(4);
    h.arrayHeader(w, n);
    for (let i = 0; i < Math.min(n, 6); i++) {
      if (kind < 7) h.message(w, budget);
      else h.value(w, 1, budget);
    }
  } else if (kind < 7) {
    h.message(w, budget);
  } else {
    h.value(w, 0, budget);
  }
  const out = Uint8Array.from(w.bytes);
  return h.chance(0.1) ? out.subarray(0, h.int(out.length + 1)) : out;
};

// ---- the run ---------------------------------------------------------------------------------

export interface FuzzResult {
  seed: number;
  cases: number;
  ms: number;
  /** Slowest single case (decode and handling, sealing excluded), and its index. */
  worstMs: number;
  worstCase: number;
  /** RSS at the start and the most seen (sampled every 64 cases). */
  rssStart: number;
  rssPeak: number;
  /** Cases by path, and how many the node or decoder accepted as valid. */
  paths: Record<"udp" | "request" | "reply" | "decoders", number>;
  accepted: number;
  /** The first failure: a throw, or an undecodable message sent by the node. */
  failure: { case: number; error: string } | null;
}

export const fuzzDecoders = (o: {
  cases: number;
  seed: number;
  onProgress?: (r: FuzzResult) => void;
  /**
   * A full collection before the run and every this many cases: in a process shared with other
   * work (bun test runs every file in one), garbage that is not the fuzz's would otherwise count in
   * its RSS. A decode that allocates much still shows: RSS keeps the pages it grew to.
   */
  gcEvery?: number;
}): FuzzResult => {
  if (o.gcEvery !== undefined) Bun.gc(true);
  const rng = new Xoshiro128(o.seed);
  const h = new Hostile(rng);
  const keyring = new Keyring([Uint8Array.from({ length: 32 }, (_, i) => (o.seed * 31 + i) & 0xff)]);
  const udpLabel = "hashd-gossip/udp";
  const seal = keyringFrameSeal(keyring, "hashd-gossip/tcp");
  const result: FuzzResult = {
    seed: o.seed,
    cases: 0,
    ms: 0,
    worstMs: 0,
    worstCase: -1,
    rssStart: process.memoryUsage.rss(),
    rssPeak: 0,
    paths: { udp: 0, request: 0, reply: 0, decoders: 0 },
    accepted: 0,
    failure: null,
  };
  result.rssPeak = result.rssStart;
  let token = -1;
  let sent = 0;
  const ping = assemblePacket([encodeMessage({ t: T.ping, seq: 1, to: SELF })]);
  const runtime: Runtime = {
    send: (_to, packet) => {
      sent++;
      const d = decodePacket(packet, 1400);
      if (!d.ok) throw new Error(`the node sent an undecodable packet: ${d.error}`);
    },
    schedule: () => {},
    openStream: (_to, request, t) => {
      const d = decodeStream(request, 1 << 26);
      if (!d.ok) throw new Error(`the node sent an undecodable stream request: ${d.error}`);
      token = t;
    },
    notify: () => {},
  };
  let node: GossipNode | null = null;
  let now = BOOT;
  const fresh = (): GossipNode => {
    const n = new GossipNode(
      { maxStreamBytes: MAX_STREAM },
      { name: SELF, address: SELF_ADDR, boot: BOOT },
      rng.fork(),
      now,
      runtime,
    );
    n.handlePacket(
      PEER_ADDR,
      assemblePacket([encodeMessage({ t: T.alive, name: "n1", addr: PEER_ADDR, inc: BOOT, boot: BOOT })]),
      now,
    );
    n.setLocalState(fakeState(100, 2, { ingress: "10.0.0.1:80" }), now);
    return n;
  };
  const start = performance.now();
  for (let i = 0; i < o.cases; i++) {
    if (i % 256 === 0) node = fresh();
    const n = node as GossipNode;
    now += 1 + h.int(50);
    const path = h.int(4);
    let t0 = 0;
    let t1 = 0;
    try {
      if (path === 0) {
        const sealed = keyring.seal(plaintext(h, true), udpLabel);
        t0 = performance.now();
        const plain = keyring.open(sealed, udpLabel);
        if (plain === null) throw new Error("a sealed packet did not open");
        const before = n.stats().decodeErrors;
        n.handlePacket(PEER_ADDR, plain, now);
        t1 = performance.now();
        if (n.stats().decodeErrors === before) result.accepted++;
        result.paths.udp++;
      } else if (path === 1) {
        const framed = seal.frame(h.chance(0.05) ? FRAME_REPLY : FRAME_REQUEST, plaintext(h, false));
        t0 = performance.now();
        const reader = new FrameReader(seal, FRAME_REQUEST, MAX_STREAM + 29);
        let at = 0;
        let r = reader.push(framed.subarray(0, 0));
        while (r.kind === "more" && at < framed.length) {
          const step = 1 + h.int(framed.length);
          r = reader.push(framed.subarray(at, at + step));
          at += step;
        }
        if (r.kind === "frame") {
          const plain = seal.openBody(r.body);
          if (plain === null) throw new Error("a sealed body did not open");
          const reply = n.handleStreamRequest(plain, now);
          if (reply !== null) {
            result.accepted++;
            const d = decodeStream(reply, 1 << 26);
            if (!d.ok) throw new Error(`the node answered with an undecodable reply: ${d.error}`);
          }
        }
        t1 = performance.now();
        result.paths.request++;
      } else if (path === 2) {
        token = -1;
        n.join(["10.0.0.9:7946"], now);
        const plain = plaintext(h, false);
        t0 = performance.now();
        const before = n.stats().decodeErrors;
        n.handleStreamResponse(token, plain, now);
        t1 = performance.now();
        if (n.stats().decodeErrors === before) result.accepted++;
        result.paths.reply++;
      } else {
        const plain = plaintext(h, h.chance(0.5));
        t0 = performance.now();
        const a = decodePacket(plain, 1350);
        const b = decodeStream(plain, MAX_STREAM);
        t1 = performance.now();
        if (a.ok || b.ok) result.accepted++;
        result.paths.decoders++;
      }
      // the node still answers a ping, with an ack its peers decode (runtime.send checks)
      sent = 0;
      n.handlePacket(PEER_ADDR, ping, now);
      if (sent === 0) throw new Error("the node no longer answers a ping");
    } catch (e) {
      result.failure = { case: i, error: (e as Error).stack ?? String(e) };
      result.cases = i + 1;
      break;
    }
    const took = t1 - t0;
    if (took > result.worstMs) {
      result.worstMs = took;
      result.worstCase = i;
    }
    result.cases = i + 1;
    if ((i & 63) === 63) {
      const rss = process.memoryUsage.rss();
      if (rss > result.rssPeak) result.rssPeak = rss;
    }
    if (o.gcEvery !== undefined && (i + 1) % o.gcEvery === 0) Bun.gc(true);
    if (o.onProgress !== undefined && (i + 1) % 100_000 === 0) {
      result.ms = performance.now() - start;
      o.onProgress(result);
    }
  }
  result.ms = performance.now() - start;
  const rss = process.memoryUsage.rss();
  if (rss > result.rssPeak) result.rssPeak = rss;
  return result;
};
