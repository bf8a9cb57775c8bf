/**
 * Every decode path goes through the same limits before anything is allocated (msgpack-scan.ts,
 * codec.ts scanLimits). The stream path used to skip the scan that protects UDP, and the msgpack
 * decoder allocates an array at its declared size before it checks that the items are there: a
 * 900-byte frame of nested array16 headers (each declaring 65,535 items) stalled the agent 0.46 s
 * and grew it 154 MiB; 30 KB of them, 18 s and 5 GB.
 */
import { describe, expect, test } from "bun:test";
import { addr, packet, fakeRuntimeNode as setup, T0 } from "../../../../test/support/gossip/fake-runtime.ts";
import { fakeState } from "../../../../test/support/gossip/fixtures.ts";
import { assemblePacket, decodePacket, encodeMessage, scanLimits } from "./codec.ts";
import { decodeStream } from "./codec-stream.ts";
import { T } from "./messages.ts";
import { skipValue } from "./msgpack-scan.ts";

const MiB = 2 ** 20;

/** `levels` array16 headers, each declaring 65,535 items, nested: 3 bytes per level. */
const nestedHeaders = (levels: number): Uint8Array => {
  const b = new Uint8Array(3 * levels);
  for (let i = 0; i < levels; i++) b.set([0xdc, 0xff, 0xff], 3 * i);
  return b;
};

/** Decode through `run` and return how long it took and how much the process grew. */
const cost = (run: () => void): { ms: number; grew: number } => {
  Bun.gc(true);
  const rss = process.memoryUsage.rss();
  const t = performance.now();
  run();
  return { ms: performance.now() - t, grew: process.memoryUsage.rss() - rss };
};

describe("the nested-header stream attack", () => {
  test.each([
    ["900 bytes", 300],
    ["30 KB", 10_000],
  ])(
    "%s of nested array headers: refused by every path without allocating",
    (_name, levels) => {
      const hostile = nestedHeaders(levels);
      const s = setup(1);
      s.node.join([addr(5)], T0);
      const token = s.rt.streams.at(-1)?.token as number;
      const c = cost(() => {
        expect(decodeStream(hostile, 64 * MiB).ok).toBe(false);
        expect(decodePacket(hostile, 1350).ok).toBe(false);
        expect(s.node.handleStreamRequest(hostile, T0 + 1)).toBeNull(); // a request
        s.node.handleStreamResponse(token, hostile, T0 + 2); // a push-pull reply
        s.node.handlePacket(addr(1), hostile, T0 + 3); // a packet
      });
      expect(s.node.stats().decodeErrors).toBe(3);
      // before: 0.46 s and 154 MiB for 900 bytes (one decode); now microseconds and nothing
      expect(c.grew).toBeLessThan(32 * MiB);
      expect(c.ms).toBeLessThan(200);
    },
    60_000,
  );

  test("the same inside a well-formed push-pull (in its aliases) is refused too", () => {
    const pp = encodeMessage({
      t: T.pushPull,
      join: false,
      from: "n1",
      fromAddr: addr(1),
      members: [],
      aliases: [],
      states: [],
    });
    // replace the empty alias list (second-last byte, 0x90) by the nested headers
    const hostile = new Uint8Array([...pp.subarray(0, pp.length - 2), ...nestedHeaders(300), 0x90]);
    const c = cost(() => expect(decodeStream(hostile, 64 * MiB).ok).toBe(false));
    expect(c.grew).toBeLessThan(32 * MiB);
  });
});

describe("the scan's limits", () => {
  const limits = scanLimits(1 << 20);
  const skip = (bytes: number[]): number => skipValue(Uint8Array.from(bytes), 0, limits);

  test("declared lengths beyond the remaining bytes are refused before anything is read", () => {
    expect(skip([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0])).toBe(-1); // array32 of 2^32 - 1, 1 item there
    expect(skip([0xdc, 0x00, 0x03, 0xc0, 0xc0])).toBe(-1); // array16 of 3, 2 there
    expect(skip([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])).toBe(-1); // str32
    expect(skip([0xc6, 0x00, 0x00, 0x00, 0x02, 0x61])).toBe(-1); // bin32 of 2, 1 there
    expect(skip([0xda, 0x00, 0x02])).toBe(-1);
    expect(skip([0xdc, 0x00, 0x03, 0xc0, 0xc0, 0xc0])).toBe(6);
  });

  test("count limits: items per array, bytes per string, objects per message", () => {
    const arr = (n: number) => [
      0xdd,
      n >>> 24,
      (n >>> 16) & 255,
      (n >>> 8) & 255,
      n & 255,
      ...new Array(n).fill(0xc0),
    ];
    expect(skip(arr(65_536))).toBe(65_541);
    expect(skip(arr(65_537))).toBe(-1);
    const str = (n: number) => [0xda, n >> 8, n & 255, ...new Array(n).fill(0x61)];
    expect(skip(str(4096))).toBe(4099);
    expect(skip(str(4097))).toBe(-1);
    // 30,000 empty arrays: 30,003 bytes would decode to 30,000 objects (2 MiB); the budget for
    // 30 KB is 4,096 + 5,000
    const empties = [0xdc, 30_000 >> 8, 30_000 & 255, ...new Array(30_000).fill(0x90)];
    expect(skipValue(Uint8Array.from(empties), 0, scanLimits(empties.length))).toBe(-1);
    expect(decodeStream(Uint8Array.from(empties), 64 * MiB).ok).toBe(false);
  });

  test("nesting: the protocol's 7 levels pass, an 8th is refused", () => {
    const nested = (depth: number) => [...new Array(depth - 1).fill(0x91), 0x90];
    expect(skip(nested(7))).toBe(7);
    expect(skip(nested(8))).toBe(-1);
    // the deepest real message: a states reply with refs
    const states = encodeMessage({
      t: T.states,
      states: [{ name: "n1", version: { boot: 1, seq: 1 }, state: fakeState(0, 2, { refs: 2 }) }],
    });
    expect(decodeStream(states, 1 << 20).ok).toBe(true);
  });

  test("maps, extensions and the never-used byte are refused", () => {
    for (const b of [
      [0x80],
      [0x81, 0x01, 0x01],
      [0xde, 0x00, 0x00],
      [0xd4, 0x01, 0x01],
      [0xc7, 0x00, 0x01],
      [0xc1],
    ])
      expect(skip(b)).toBe(-1);
  });

  test("real traffic is within the limits: a packet of every size, a large states reply", () => {
    const big = encodeMessage({
      t: T.states,
      states: Array.from({ length: 64 }, (_, i) => ({
        name: `node-${i}`,
        version: { boot: T0, seq: i + 1 },
        state: fakeState(i * 500, 500, { refs: 1, ingress: `10.0.0.${i}:80` }),
      })),
    });
    expect(big.length).toBeGreaterThan(2 * MiB);
    expect(decodeStream(big, 64 * MiB).ok).toBe(true);
    const p = assemblePacket(Array.from({ length: 30 }, (_, i) => encodeMessage({ t: T.nack, seq: i })));
    expect(decodePacket(p, 1350).ok).toBe(true);
    const s = setup(1);
    s.node.handlePacket(addr(1), packet({ t: T.ping, seq: 1, to: "me" }), T0 + 1);
    expect(s.node.stats().decodeErrors).toBe(0);
  });
});
