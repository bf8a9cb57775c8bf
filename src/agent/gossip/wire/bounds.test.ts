/**
 * Counters from the wire stay within their bounds (codec-fields.ts LIMITS): one sealed message
 * claiming an incarnation of 2^53 - 1 about a member used to make it refute at 2^53, past the
 * last safe integer, so every ack it sent after that failed its peers' decoder until it
 * restarted. The same held for boot ids (a claimed boot made it take boot + 1) and for the
 * HLC's logical counter (merged + 1).
 */
import { describe, expect, test } from "bun:test";
import { addr, packet, fakeRuntimeNode as setup, T0 } from "../../../../test/support/gossip/fake-runtime.ts";
import { encodeMessage } from "./codec.ts";
import { LIMITS } from "./codec-fields.ts";
import { decodeStream } from "./codec-stream.ts";
import { type Ack, type PacketMessage, T } from "./messages.ts";

const UNSAFE_NEXT = 2 ** 53 - 1; // its + 1 is no safe integer

/** Ping the node; its ack, decoded as a peer decodes it (FakeRuntime throws if it does not). */
const ackOf = (s: ReturnType<typeof setup>, now: number): Ack => {
  s.rt.clear();
  s.node.handlePacket(addr(1), packet({ t: T.ping, seq: 42, to: "me" }), now);
  const ack = s.rt.sent.at(-1)?.messages[0];
  expect(ack?.t).toBe(T.ack);
  return ack as Ack;
};

const incarnation = (s: ReturnType<typeof setup>): number =>
  s.node.members().find((m) => m.name === "me")?.incarnation as number;

describe("incarnations", () => {
  const claims: [string, (inc: number) => PacketMessage][] = [
    ["suspect", (inc) => ({ t: T.suspect, name: "me", inc, from: "n1" })],
    ["dead", (inc) => ({ t: T.dead, name: "me", inc, from: "n1" })],
    ["alive", (inc) => ({ t: T.alive, name: "me", addr: addr(0), inc, boot: T0 })],
  ];

  test.each(claims)("a %s about us at 2^53 - 1 is refused, and our acks still decode", (_kind, claim) => {
    const s = setup(2);
    s.node.handlePacket(addr(1), packet(claim(UNSAFE_NEXT)), T0 + 1);
    expect(s.node.stats().decodeErrors).toBe(1);
    expect(s.node.stats().refutations).toBe(0);
    const ack = ackOf(s, T0 + 2); // before the fix: inc 2^53, which no peer decodes
    expect(ack.inc).toBe(T0);
    expect(Number.isSafeInteger(ack.inc)).toBe(true);
  });

  test.each(claims)("a %s at the bound is not refuted: said once, never passed", (_kind, claim) => {
    const s = setup(2);
    for (let i = 0; i < 3; i++) s.node.handlePacket(addr(1), packet(claim(LIMITS.clock)), T0 + 1 + i);
    expect(s.node.stats().decodeErrors).toBe(0); // valid on the wire
    expect(s.node.stats().refutations).toBe(0);
    expect(incarnation(s)).toBe(T0);
    const told = s.rt.events.filter((e) => e.type === "incarnation-exhausted");
    expect(told).toEqual([
      { type: "incarnation-exhausted", field: "incarnation", claimed: LIMITS.clock, bound: LIMITS.clock },
    ]);
    expect(ackOf(s, T0 + 10).inc).toBe(T0);
  });

  test("a suspicion just under the bound is refuted at the bound; the next one is not", () => {
    const s = setup(2);
    s.node.handlePacket(
      addr(1),
      packet({ t: T.suspect, name: "me", inc: LIMITS.clock - 1, from: "n1" }),
      T0 + 1,
    );
    expect(s.node.stats().refutations).toBe(1);
    expect(incarnation(s)).toBe(LIMITS.clock);
    expect(ackOf(s, T0 + 2).inc).toBe(LIMITS.clock); // decoded by a peer: the bound itself is valid
    s.node.handlePacket(addr(1), packet({ t: T.suspect, name: "me", inc: LIMITS.clock, from: "n1" }), T0 + 3);
    expect(s.node.stats().refutations).toBe(1);
    expect(incarnation(s)).toBe(LIMITS.clock);
    expect(s.rt.events.some((e) => e.type === "incarnation-exhausted")).toBe(true);
  });

  test("acks, alives and push-pull members past the bound are refused by the decoder", () => {
    const s = setup(1);
    s.node.handlePacket(addr(1), packet({ t: T.ack, seq: 1, from: "n1", inc: UNSAFE_NEXT, boot: 1 }), T0 + 1);
    s.node.handlePacket(
      addr(1),
      packet({ t: T.alive, name: "n1", addr: addr(1), inc: LIMITS.clock + 1, boot: 1 }),
      T0 + 2,
    );
    s.node.handlePacket(addr(1), packet({ t: T.ping, seq: 2 ** 32, to: "me" }), T0 + 3);
    expect(s.node.stats().decodeErrors).toBe(3);
    const pushPull = (inc: number, boot: number, vBoot: number) =>
      encodeMessage({
        t: T.pushPull,
        join: false,
        from: "n1",
        fromAddr: addr(1),
        members: [{ name: "me", addr: addr(0), inc, status: "dead", boot, version: { boot: vBoot, seq: 1 } }],
        aliases: [],
        states: [],
      });
    expect(decodeStream(pushPull(T0, T0, T0), 1 << 20).ok).toBe(true);
    for (const bad of [
      pushPull(UNSAFE_NEXT, T0, T0),
      pushPull(T0, UNSAFE_NEXT, T0),
      pushPull(T0, T0, UNSAFE_NEXT),
    ]) {
      expect(decodeStream(bad, 1 << 20).ok).toBe(false);
      expect(s.node.handleStreamRequest(bad, T0 + 4)).toBeNull();
    }
    expect(incarnation(s)).toBe(T0);
  });
});

describe("boot ids and state versions", () => {
  test("an alive about us with a boot of 2^53 - 1 is refused; at the bound, no boot is taken past it", () => {
    const s = setup(1);
    s.node.handlePacket(
      addr(1),
      packet({ t: T.alive, name: "me", addr: addr(0), inc: T0 + 5, boot: UNSAFE_NEXT }),
      T0 + 1,
    );
    expect(s.node.stats().decodeErrors).toBe(1);
    expect(ackOf(s, T0 + 2).boot).toBe(T0);
    s.node.handlePacket(
      addr(1),
      packet({ t: T.alive, name: "me", addr: addr(0), inc: T0 + 5, boot: LIMITS.clock }),
      T0 + 3,
    );
    expect(s.rt.events).toContainEqual({
      type: "incarnation-exhausted",
      field: "boot",
      claimed: LIMITS.clock,
      bound: LIMITS.clock,
    });
    const ack = ackOf(s, T0 + 4);
    expect(ack.boot).toBe(T0); // not LIMITS.clock + 1
    expect(ack.inc).toBe(T0 + 6); // the incarnation part is refuted as usual
  });

  test("a state version of ours at the bound does not push our versions past it", () => {
    const s = setup(1);
    s.node.setLocalState({ hashes: [] }, T0 + 1);
    s.node.handlePacket(
      addr(1),
      packet({ t: T.stateVer, name: "me", version: { boot: UNSAFE_NEXT, seq: 1 } }),
      T0 + 600,
    );
    expect(s.node.stats().decodeErrors).toBe(1);
    s.node.handlePacket(
      addr(1),
      packet({ t: T.stateVer, name: "me", version: { boot: LIMITS.clock, seq: 1 } }),
      T0 + 1200,
    );
    const v = s.node.stateVersionOf("me");
    expect(v?.boot).toBe(T0);
    expect(ackOf(s, T0 + 1300).boot).toBe(T0);
  });
});

describe("hybrid logical clock", () => {
  const alias = (logical: number) => ({
    t: T.alias,
    origin: "n1",
    hlc: { wall: T0 + 10, logical },
    entries: [{ name: "prod", hash: null, previous: [] }],
  });

  test("a logical counter past uint32 is refused; one at it carries our clock into the wall", () => {
    const s = setup(1);
    s.node.handlePacket(addr(1), packet(alias(UNSAFE_NEXT) as PacketMessage), T0 + 10);
    expect(s.node.stats().decodeErrors).toBe(1);
    s.node.handlePacket(addr(1), packet(alias(LIMITS.counter) as PacketMessage), T0 + 10);
    expect(s.node.stats().decodeErrors).toBe(1);
    const r = s.node.setAlias("prod", null, T0 + 10);
    // before the fix: logical 2^32 (or 2^53 after a claim of 2^53 - 1), refused by every peer
    expect(r.hlc).toEqual({ wall: T0 + 11, logical: 1 }); // merged to (wall + 1, 0), then ticked
    s.rt.clear();
    s.node.handleTimer(s.rt.lastTimer("gossip"), T0 + 20); // FakeRuntime decodes what goes out
    expect(s.rt.sent.some((p) => p.messages.some((m) => m.t === T.alias && m.origin === "me"))).toBe(true);
  });
});
