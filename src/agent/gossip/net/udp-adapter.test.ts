/**
 * The adapter on real loopback sockets: three members converge, a stopped one is declared dead,
 * a member with the wrong key is never admitted, and hostile datagrams and stream frames are
 * dropped and counted without harm.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fakeHash, fakeState } from "../../../../test/support/gossip/fixtures.ts";
import type { GossipEvent } from "../types.ts";
import { assemblePacket, encodeMessage } from "../wire/codec.ts";
import { Keyring } from "../wire/crypto.ts";
import { T } from "../wire/messages.ts";
import { FRAME_REQUEST, keyringFrameSeal } from "../wire/stream-frame.ts";
import { UdpGossipAdapter } from "./udp-adapter.ts";

// Fast timers so the test takes seconds; the protocol is the same.
const config = {
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  gossipIntervalMs: 50,
  pushPullIntervalMs: 2000,
  stateMinIntervalMs: 50,
  gossipToTheDeadMs: 60_000,
};

const waitFor = async (what: string, cond: () => boolean, timeoutMs = 8000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await Bun.sleep(20);
  }
};

const keyText = Keyring.generateKey();
const nodes: UdpGossipAdapter[] = [];
const events: GossipEvent[][] = [[], [], []];
const captured: Uint8Array[] = [];

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    nodes.push(
      await UdpGossipAdapter.start({
        name: `host-${i}`,
        keyring: Keyring.parse(keyText),
        bindHost: "127.0.0.1",
        port: 0,
        config,
        streamLimits: { headerTimeoutMs: 1000 },
        onEvent: (e) => events[i]?.push(e),
        tap:
          i === 0
            ? (dir, _peer, sealed) => dir === "in" && captured.length < 50 && captured.push(sealed)
            : undefined,
      }),
    );
  }
});

afterAll(() => {
  for (const n of nodes) n.stop();
});

const node = (i: number) => nodes[i] as UdpGossipAdapter;
const aliveSeen = (i: number) =>
  node(i)
    .node.members()
    .filter((m) => m.state === "alive").length;

describe("UdpGossipAdapter on loopback", () => {
  test("three members on different ports converge: membership, state, aliases", async () => {
    expect(new Set(nodes.map((n) => n.address)).size).toBe(3);
    node(1).join([node(0).address]);
    node(2).join([node(1).address]);
    await waitFor("everyone sees 3 alive", () => [0, 1, 2].every((i) => aliveSeen(i) === 3));
    const h = fakeHash(5);
    node(2).setLocalState(fakeState(5, 1, { ingress: "127.0.0.1:8080" }));
    await waitFor("host-0 learns what host-2 runs", () => node(0).node.whoRuns(h).length === 1);
    expect(node(0).node.whoRuns(h)[0]?.member.name).toBe("host-2");
    expect(node(0).node.memberState("host-2")?.ingress).toBe("127.0.0.1:8080");
    node(1).setAlias("prod.test", h);
    await waitFor("aliases agree", () => [0, 2].every((i) => node(i).node.aliases()[0]?.hash === h));
    expect(events[1]?.some((e) => e.type === "joined")).toBe(true);
  });

  test("a member with the wrong key is never admitted", async () => {
    const intruderEvents: GossipEvent[] = [];
    const intruder = await UdpGossipAdapter.start({
      name: "intruder",
      keyring: Keyring.parse(Keyring.generateKey()),
      bindHost: "127.0.0.1",
      port: 0,
      config,
      onEvent: (e) => intruderEvents.push(e),
    });
    try {
      const unopenedBefore = node(0).stats().unopened;
      intruder.join([node(0).address]);
      await waitFor("the join fails", () => intruderEvents.some((e) => e.type === "join-failed"));
      await Bun.sleep(500);
      for (const i of [0, 1, 2]) expect(node(i).node.memberStatus("intruder")).toBeNull();
      expect(intruder.node.members().length).toBe(1);
      expect(node(0).stats().unopened).toBeGreaterThan(unopenedBefore);
      expect(node(0).stats().streamsRefused).toBeGreaterThan(0);
    } finally {
      intruder.stop();
    }
  });

  test("forged, truncated, oversized, replayed and garbage datagrams are dropped and counted", async () => {
    const target = node(0);
    const { port } = { port: Number(target.address.split(":")[1]) };
    const raw = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    const keyring = Keyring.parse(keyText); // an insider's key, to craft authentic nonsense
    const label = "hashd-gossip/udp";
    const before = target.stats();
    const membersBefore = target.node.members().map((m) => `${m.name}:${m.state}`);
    const send = (b: Uint8Array) => raw.send(b, port, "127.0.0.1");

    send(crypto.getRandomValues(new Uint8Array(200))); // forged
    const sealed = keyring.seal(assemblePacket([encodeMessage({ t: T.ping, seq: 1, to: "host-0" })]), label);
    send(sealed.subarray(0, sealed.length - 5)); // truncated
    send(new Uint8Array(1500)); // oversized
    send(keyring.seal(crypto.getRandomValues(new Uint8Array(64)), label)); // authentic garbage
    send(keyring.seal(new Uint8Array([0x91, 0x93, 0x01]), label)); // authentic, truncated msgpack
    send(
      keyring.seal(
        assemblePacket([encodeMessage({ t: T.ack, seq: 12345, from: "host-1", inc: 10, boot: 10 })]),
        label,
      ),
    ); // stale ack
    for (const c of captured.slice(0, 20)) send(c); // replays of real traffic
    expect(captured.length).toBeGreaterThan(0);

    await waitFor("all counted", () => {
      const s = target.stats();
      return (
        s.oversized > before.oversized &&
        s.decodeErrors >= before.decodeErrors + 2 &&
        s.staleAcks > before.staleAcks
      );
    });
    const after = target.stats();
    expect(after.unopened - before.unopened).toBeGreaterThanOrEqual(2); // forged + truncated
    expect(after.openFailures - before.openFailures).toBeGreaterThanOrEqual(2);
    expect(after.handlerErrors).toBe(0);
    await Bun.sleep(300);
    expect(target.node.members().map((m) => `${m.name}:${m.state}`)).toEqual(membersBefore);
    raw.close();
  });

  test("hostile stream frames are refused without harm", async () => {
    const target = node(0);
    const port = Number(target.address.split(":")[1]);
    const before = target.stats().streamsRefused;
    const attempt = async (bytes: Uint8Array) => {
      const closed = Promise.withResolvers<void>();
      const s = await Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: { data() {}, close: () => closed.resolve(), error: () => closed.resolve() },
      });
      s.write(bytes);
      await Promise.race([closed.promise, Bun.sleep(2000)]);
      s.end();
    };
    const huge = new Uint8Array(4);
    new DataView(huge.buffer).setUint32(0, 0xffffffff);
    await attempt(huge); // the old framing's length prefix: not a header, cut at the header deadline
    await attempt(crypto.getRandomValues(new Uint8Array(100))); // a header no key opens: cut at once
    const seal = keyringFrameSeal(Keyring.parse(keyText), "hashd-gossip/tcp");
    await attempt(seal.frame(FRAME_REQUEST, new Uint8Array([0xc1]))); // authentic garbage
    await waitFor("refusals counted", () => target.stats().streamsRefused >= before + 3);
    expect(target.stats().handlerErrors).toBe(0);
    expect(aliveSeen(0)).toBe(3);
  });

  test("a large state (hundreds of KB) is fetched over TCP, across partial writes", async () => {
    const big = fakeState(100_000, 3000, { refs: 2 });
    node(1).setLocalState(big);
    const h = fakeHash(100_000 + 2999);
    await waitFor("host-0 and host-2 fetched it", () =>
      [0, 2].every((i) => node(i).node.whoRuns(h).length === 1),
    );
    expect(node(0).node.memberState("host-1")?.hashes.length).toBe(3000);
    expect(node(0).stats().handlerErrors).toBe(0);
  });

  test("a stopped member is declared dead by the others", async () => {
    node(2).stop();
    await waitFor("host-2 dead at host-0 and host-1", () =>
      [0, 1].every((i) => node(i).node.memberStatus("host-2") === "dead"),
    );
    expect(node(0).node.whoRuns(fakeHash(5))).toEqual([]);
    expect(events[0]?.some((e) => e.type === "member-dead" && e.member.name === "host-2")).toBe(true);
  });
});
