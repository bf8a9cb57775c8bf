/**
 * The stream server on the gossip port (tcp-streams.ts), on real loopback sockets against the real
 * adapter. It used to take anyone, forever, with no key: a valid length prefix and then silence,
 * a trickle of one byte per 500 ms, or a connection that sent nothing were still open after 60 s;
 * a whole frame (up to 16 MiB) was buffered before it was authenticated (16 such connections
 * added 257 MiB); 200 idle connections were all accepted. Deadlines here are short (the server's
 * limits are options); the waits around them are long, for slow machines.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import type { GossipEvent } from "../types.ts";
import { Keyring } from "../wire/crypto.ts";
import { FRAME_REPLY, FRAME_REQUEST, keyringFrameSeal, SEALED_HEADER_BYTES } from "../wire/stream-frame.ts";
import { UdpGossipAdapter } from "./udp-adapter.ts";

const HEADER_MS = 400;
const CONNECTION_MS = 1500;
/** Deadlines of the servers whose tests check that something is cut at once, not at a deadline. */
const LONG = { headerTimeoutMs: 10_000, connectionTimeoutMs: 20_000 };
const AT_ONCE_MS = 5000;
const MAX_STREAM_BYTES = 1 << 20;
const PATIENCE_MS = 15_000; // how long a test waits for something that should take < 2 s
const keyText = Keyring.generateKey();
const keyring = Keyring.parse(keyText);
const seal = keyringFrameSeal(keyring, "hashd-gossip/tcp");

const start = (name: string, limits: object, onEvent?: (e: GossipEvent) => void) =>
  UdpGossipAdapter.start({
    name,
    keyring: Keyring.parse(keyText),
    bindHost: "127.0.0.1",
    port: 0,
    config: {
      maxStreamBytes: MAX_STREAM_BYTES,
      probeIntervalMs: 200,
      probeTimeoutMs: 100,
      gossipIntervalMs: 50,
    },
    streamLimits: {
      headerTimeoutMs: HEADER_MS,
      connectionTimeoutMs: CONNECTION_MS,
      maxConnections: 64,
      maxConnectionsPerHost: 8,
      ...limits,
    },
    onEvent,
  });

const portOf = (a: UdpGossipAdapter): number => Number(a.address.split(":")[1]);

interface Client {
  sock: Socket<undefined>;
  openedAt: number;
  /** Resolves with the time the server cut the connection. */
  closed: Promise<number>;
  isClosed: () => boolean;
  received: () => number;
}

const connect = async (port: number): Promise<Client> => {
  const closed = Promise.withResolvers<number>();
  let done = false;
  let received = 0;
  const finish = () => {
    done = true;
    closed.resolve(performance.now());
  };
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_s, d) => {
        received += d.length;
      },
      close: finish,
      error: finish,
      end: finish,
    },
  });
  return {
    sock,
    openedAt: performance.now(),
    closed: closed.promise,
    isClosed: () => done,
    received: () => received,
  };
};

/** Milliseconds until the server cut `c`, or null if it was still open after `patience`. */
const cutAfter = async (c: Client, patience = PATIENCE_MS): Promise<number | null> => {
  const at = await Promise.race([c.closed, Bun.sleep(patience).then(() => null)]);
  return at === null ? null : at - c.openedAt;
};

/** A header that opens: kind and declared body length chosen freely. */
const header = (kind: number, length: number): Uint8Array => {
  const plain = new Uint8Array(5);
  plain[0] = kind;
  new DataView(plain.buffer).setUint32(1, length);
  const h = keyring.seal(plain, "hashd-gossip/tcp-head");
  expect(h.length).toBe(SEALED_HEADER_BYTES);
  return h;
};

const waitFor = async (what: string, cond: () => boolean, timeoutMs = PATIENCE_MS): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await Bun.sleep(20);
  }
};

let a: UdpGossipAdapter;
const all: UdpGossipAdapter[] = [];

beforeAll(async () => {
  a = await start("a", {});
  all.push(a);
});

afterAll(() => {
  for (const x of all) x.stop();
});

describe("deadlines", () => {
  test("a connection that sends nothing is cut at the header deadline", async () => {
    const c = await connect(portOf(a));
    const ms = await cutAfter(c);
    expect(ms).not.toBeNull(); // before: still open after 60 s
    expect(ms as number).toBeGreaterThanOrEqual(HEADER_MS - 50);
  }, 30_000);

  test("the old framing's length prefix, then silence: cut at the header deadline", async () => {
    const c = await connect(portOf(a));
    c.sock.write(new Uint8Array([0x00, 0x00, 0x10, 0x00])); // "4 KiB follow"
    expect(await cutAfter(c)).not.toBeNull();
  }, 30_000);

  test("a trickle of one byte per 100 ms does not renew the header deadline", async () => {
    const c = await connect(portOf(a));
    // what the old framing took as a frame of 4 KiB, trickled: it waited for all of it
    const trickle = new Uint8Array(SEALED_HEADER_BYTES + 100);
    trickle.set([0x00, 0x00, 0x10, 0x00]);
    let sent = 0;
    while (!c.isClosed() && sent < trickle.length && performance.now() - c.openedAt < PATIENCE_MS) {
      c.sock.write(trickle.subarray(sent, sent + 1));
      sent++;
      await Bun.sleep(100);
    }
    expect(c.isClosed()).toBe(true);
    expect(sent).toBeLessThan(SEALED_HEADER_BYTES); // cut by the deadline, before a header was complete
  }, 30_000);

  test("an authentic header, then a trickling body: cut at the connection deadline", async () => {
    const c = await connect(portOf(a));
    c.sock.write(header(FRAME_REQUEST, 1000));
    let sent = 0;
    while (!c.isClosed() && sent < 1000 && performance.now() - c.openedAt < PATIENCE_MS) {
      c.sock.write(new Uint8Array([0]));
      sent++;
      await Bun.sleep(100);
    }
    const ms = (await c.closed) - c.openedAt;
    expect(sent).toBeLessThan(1000);
    expect(ms).toBeGreaterThanOrEqual(CONNECTION_MS - 50); // it got past the header deadline
  }, 30_000);
});

describe("authentication before buffering", () => {
  test("16 connections each sending a frame no key opens: cut at once, 34 bytes held each", async () => {
    const b = await start("b", { ...LONG, maxConnectionsPerHost: 32 });
    all.push(b);
    const unopenedBefore = b.stats().unopened;
    const clients = await Promise.all(Array.from({ length: 16 }, () => connect(portOf(b))));
    const t0 = performance.now();
    for (const c of clients) {
      // the old framing: "1 MiB follows" (the bound here), then most of it: it was buffered, then
      // the server waited for the rest
      const data = new Uint8Array(MAX_STREAM_BYTES - 1000);
      new DataView(data.buffer).setUint32(0, MAX_STREAM_BYTES);
      c.sock.write(data);
    }
    const cut = await Promise.all(clients.map((c) => cutAfter(c)));
    expect(cut.every((ms) => ms !== null)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(AT_ONCE_MS); // not the deadline: the header
    expect(b.streamStats.peakBuffered).toBeLessThanOrEqual(16 * SEALED_HEADER_BYTES);
    expect(b.streamStats.unauthenticated).toBe(16);
    expect(b.stats().unopened - unopenedBefore).toBe(16);
  }, 30_000);

  test("an authentic header declaring more than the largest frame is cut at once", async () => {
    const b = await start("f", LONG);
    all.push(b);
    const c = await connect(portOf(b));
    c.sock.write(header(FRAME_REQUEST, MAX_STREAM_BYTES + 29 + 1)); // the bound is the sealed body
    const ms = await cutAfter(c);
    expect(ms).not.toBeNull();
    expect(ms as number).toBeLessThan(AT_ONCE_MS);
    expect(b.stats().streamsRefused).toBe(1);
    // a reply frame sent as a request: refused too, unanswered
    const r = await connect(portOf(b));
    r.sock.write(seal.frame(FRAME_REPLY, new Uint8Array([0x92, 0x03, 0x01])));
    expect(await cutAfter(r)).toBeLessThan(AT_ONCE_MS);
    expect(r.received()).toBe(0);
  }, 30_000);

  test("bodies announced at once are bounded over all connections", async () => {
    const b = await start("c", { connectionTimeoutMs: 4000, maxConnectionsPerHost: 32 });
    all.push(b);
    const body = MAX_STREAM_BYTES + 29; // the largest sealed body; the budget is twice that
    const clients = await Promise.all(Array.from({ length: 3 }, () => connect(portOf(b))));
    for (const c of clients) {
      c.sock.write(header(FRAME_REQUEST, body));
      await Bun.sleep(50);
    }
    const third = await cutAfter(clients[2] as Client);
    expect(third).not.toBeNull();
    expect(third as number).toBeLessThan(3000); // refused as its header opened
    expect(b.streamStats.overLimit).toBe(1);
    // the first two wait for their bodies until the connection deadline
    for (const c of clients.slice(0, 2)) expect(await cutAfter(c)).toBeGreaterThanOrEqual(3900);
    expect(b.streamStats.timedOut).toBe(2);
  }, 30_000);
});

describe("connection caps", () => {
  test("200 idle connections from one address: at most 8 are kept, and those only until the deadline", async () => {
    const b = await start("g", { headerTimeoutMs: 3000 });
    all.push(b);
    const clients = await Promise.all(Array.from({ length: 200 }, () => connect(portOf(b))));
    await waitFor("the excess is cut", () => clients.filter((c) => !c.isClosed()).length <= 8);
    expect(b.streamStats.open).toBeLessThanOrEqual(8);
    expect(b.streamStats.overLimit).toBeGreaterThanOrEqual(192);
    await waitFor("every connection is cut", () => clients.every((c) => c.isClosed()));
    await waitFor("the server holds none", () => b.streamStats.open === 0);
    expect(b.streamStats.timedOut).toBeLessThanOrEqual(8);
  }, 30_000);

  test("at most maxConnections in all", async () => {
    const b = await start("d", { ...LONG, maxConnections: 4, maxConnectionsPerHost: 100 });
    all.push(b);
    const clients = await Promise.all(Array.from({ length: 10 }, () => connect(portOf(b))));
    await waitFor("the excess is cut", () => clients.filter((c) => !c.isClosed()).length <= 4);
    expect(b.streamStats.overLimit).toBe(6);
  }, 30_000);
});

describe("real traffic under the limits", () => {
  test("members join and exchange state through the stream server; a hostile request costs nothing", async () => {
    const events: GossipEvent[] = [];
    const b = await start("e", {}, (e) => events.push(e));
    all.push(b);
    b.join([a.address]);
    await waitFor("the join's push-pull is answered", () => events.some((e) => e.type === "joined"));
    await waitFor("both see two alive", () =>
      [a, b].every((x) => x.node.members().filter((m) => m.state === "alive").length === 2),
    );
    // the 900-byte stream attack, sealed with the key: refused quickly, nothing held
    const nested = new Uint8Array(900);
    for (let i = 0; i < 300; i++) nested.set([0xdc, 0xff, 0xff], 3 * i);
    const decodeErrors = a.node.stats().decodeErrors;
    const c = await connect(portOf(a));
    c.sock.write(seal.frame(FRAME_REQUEST, nested));
    const ms = await cutAfter(c);
    expect(ms).not.toBeNull();
    expect(ms as number).toBeLessThan(CONNECTION_MS - 300); // refused as decoded, not at the deadline
    expect(a.node.stats().decodeErrors).toBe(decodeErrors + 1);
    expect(a.stats().handlerErrors).toBe(0);
    expect(b.stats().handlerErrors).toBe(0);
  }, 30_000);
});
