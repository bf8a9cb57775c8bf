import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  HASH_A,
  HASH_B,
  HASH_C,
  MapRoutes,
  rawRequest,
  startUpstream,
  tempDir,
  type Upstream,
  until,
} from "../../../test/support/ingress/servers.ts";
import { HopAuth } from "./hop-auth.ts";
import { InFlight } from "./inflight.ts";
import { type Ingress, startIngress } from "./server.ts";

// A: WebSocket echo + fast answers. B: slow answers, released by the test. C: never answers.
const dir = tempDir();
const routes = new MapRoutes();
const inflight = new InFlight();
const upstreams: Upstream[] = [];
const release = new Set<() => void>();
let aborted = 0;
let ingress: Ingress;
let base: string;

beforeAll(() => {
  upstreams.push(
    startUpstream(
      join(dir.path, "a.sock"),
      (request, server) => {
        const url = new URL(request.url);
        if (url.pathname.startsWith("/ws")) {
          const protocol = request.headers.get("sec-websocket-protocol")?.split(",")[0]?.trim();
          const upgraded = server.upgrade(request, {
            data: { host: request.headers.get("host"), prefix: request.headers.get("x-forwarded-prefix") },
            headers: protocol ? { "sec-websocket-protocol": protocol } : {},
          });
          return upgraded ? undefined : new Response("upgrade failed", { status: 400 });
        }
        if (url.pathname === "/stream") {
          // 20 chunks, 20 ms apart: in flight until the last one is written
          let n = 0;
          return new Response(
            new ReadableStream({
              async pull(controller) {
                if (n++ === 20) return controller.close();
                await Bun.sleep(20);
                controller.enqueue(new TextEncoder().encode(`chunk ${n}\n`));
              },
              cancel() {
                aborted++;
              },
            }),
          );
        }
        if (url.pathname === "/huge") return new Response(new Uint8Array(64 * 1024 * 1024));
        if (url.pathname === "/upload")
          return request.arrayBuffer().then(() => new Response(`a ${url.pathname}`));
        return new Response(`a ${url.pathname}`);
      },
      {
        websocket: {
          message(ws, message) {
            const data = ws.data as { host: string; prefix: string | null };
            ws.send(
              typeof message === "string" ? `echo ${message} via ${data.host} ${data.prefix}` : message,
            );
          },
        },
      },
    ),
    startUpstream(join(dir.path, "b.sock"), (request) => {
      const { promise, resolve } = Promise.withResolvers<Response>();
      const done = () => resolve(new Response("b done"));
      release.add(done);
      request.signal.addEventListener("abort", () => {
        aborted++;
        release.delete(done);
      });
      return promise;
    }),
    startUpstream(join(dir.path, "c.sock"), () => new Promise<Response>(() => {})),
  );
  routes.local(HASH_A, join(dir.path, "a.sock")).local(HASH_B, join(dir.path, "b.sock"));
  routes.local(HASH_C, join(dir.path, "c.sock"));
  ingress = startIngress({ config: { port: 0, upstreamTimeoutSec: 1 }, routes, inflight, log: () => {} });
  base = `http://127.0.0.1:${ingress.port}`;
});

afterAll(async () => {
  for (const done of release) done();
  await ingress.stop(0);
  for (const upstream of upstreams) upstream.stop(true);
  dir.remove();
});

describe("WebSocket", () => {
  test("echo through /h/<hash>/, subprotocol negotiated end to end, counted while open", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${ingress.port}/h/${HASH_A}/ws`, ["chat.v1", "chat.v0"]);
    const messages: string[] = [];
    const opened = Promise.withResolvers<void>();
    ws.onopen = () => opened.resolve();
    ws.onerror = (event) => opened.reject(new Error(String((event as ErrorEvent).message)));
    ws.onmessage = (event) => messages.push(String(event.data));
    await opened.promise;
    expect(ws.protocol).toBe("chat.v1");
    expect(inflight.count(HASH_A)).toBe(1);
    ws.send("hello");
    ws.send(new Uint8Array([1, 2, 3]));
    ws.send("x".repeat(200_000));
    await until(() => messages.length === 3, 5000, "echoes");
    expect(messages[0]).toBe(`echo hello via 127.0.0.1:${ingress.port} /h/${HASH_A}`);
    expect(messages[2]).toHaveLength(200_000 + `echo  via 127.0.0.1:${ingress.port} /h/${HASH_A}`.length);
    ws.close();
    await until(() => inflight.count(HASH_A) === 0, 2000, "tunnel to close");
  });

  test("echo by Host", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${ingress.port}/ws`, {
      headers: { host: `${HASH_A}.localhost` },
    });
    const reply = Promise.withResolvers<string>();
    ws.onopen = () => ws.send("hi");
    ws.onmessage = (event) => reply.resolve(String(event.data));
    ws.onerror = () => reply.reject(new Error("websocket error"));
    expect(await reply.promise).toBe(`echo hi via ${HASH_A}.localhost null`);
    ws.close();
  });
});

describe("in flight", () => {
  test("concurrent slow requests are counted; a slow service blocks no other hash", async () => {
    const pending = Array.from({ length: 5 }, (_, i) => fetch(`${base}/h/${HASH_B}/slow${i}`));
    await until(() => inflight.count(HASH_B) === 5, 3000, "5 in flight");
    expect(ingress.inflight.snapshot().hashes[HASH_B]?.inFlight).toBe(5);
    // meanwhile A answers at once
    expect(await (await fetch(`${base}/h/${HASH_A}/quick`)).text()).toBe("a /quick");
    for (const done of release) done();
    release.clear();
    const bodies = await Promise.all(pending.map(async (p) => (await p).text()));
    expect(bodies).toEqual(Array(5).fill("b done"));
    expect(inflight.count(HASH_B)).toBe(0);
  });

  test("a streaming response counts until its last byte", async () => {
    const response = await fetch(`${base}/h/${HASH_A}/stream`);
    expect(inflight.count(HASH_A)).toBe(1);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      if (!text.includes("chunk 20")) expect(inflight.count(HASH_A)).toBe(1);
    }
    expect(text.split("\n").filter(Boolean)).toHaveLength(20);
    await until(() => inflight.count(HASH_A) === 0, 1000, "count to drop");
  });

  test("a client that disconnects while waiting releases its count and the service sees it", async () => {
    const before = aborted;
    const socket = await Bun.connect({ hostname: "127.0.0.1", port: ingress.port, socket: { data() {} } });
    socket.write(`GET /h/${HASH_B}/gone HTTP/1.1\r\nHost: x\r\n\r\n`);
    await until(() => inflight.count(HASH_B) === 1, 2000, "request in flight");
    socket.end();
    await until(() => inflight.count(HASH_B) === 0, 2000, "count released");
    await until(() => aborted === before + 1, 2000, "service to see the abort");
  });

  test("a client that disconnects in the middle of a streaming response releases its count", async () => {
    const before = aborted;
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: ingress.port,
      socket: {
        data(s, data) {
          if (Buffer.from(data).toString().includes("chunk 3")) s.end();
        },
      },
    });
    socket.write(`GET /h/${HASH_A}/stream HTTP/1.1\r\nHost: x\r\n\r\n`);
    await until(() => inflight.count(HASH_A) === 1, 2000, "stream in flight");
    await until(() => inflight.count(HASH_A) === 0, 2000, "count released");
    await until(() => aborted === before + 1, 2000, "service stream cancelled");
  });
});

describe("timeouts", () => {
  test("a hung service gets 504 after upstreamTimeoutSec; others keep answering", async () => {
    const started = Date.now();
    const hung = rawRequest(ingress.port, `GET /h/${HASH_C}/ HTTP/1.1\r\nHost: x\r\n\r\n`, 5000);
    expect(await (await fetch(`${base}/h/${HASH_A}/meanwhile`)).text()).toBe("a /meanwhile");
    const response = await hung;
    expect(response.status).toBe(504);
    expect(response.body).toContain(`hash ${HASH_C} did not answer within 1 s`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(inflight.count(HASH_C)).toBe(0);
  });

  test("an idle keep-alive connection is closed after idleTimeoutSec", async () => {
    const quick = startIngress({ config: { port: 0, idleTimeoutSec: 0.5 }, routes, log: () => {} });
    const closed = Promise.withResolvers<number>();
    const started = Date.now();
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: quick.port,
      socket: { data() {}, close: () => closed.resolve(Date.now() - started) },
    });
    socket.write(`GET /h/${HASH_A}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    const after = await closed.promise;
    expect(after).toBeGreaterThanOrEqual(400);
    expect(after).toBeLessThan(1500);
    await quick.stop(0);
  });
});

describe("timeouts count silence, not transfer time", () => {
  test("a slow upload the service keeps reading is not cut by upstreamTimeoutSec", async () => {
    // ingress timeout 1 s; the upload takes ~2 s; the service answers after reading it all
    let chunks = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (chunks++ === 10) return controller.close();
        await Bun.sleep(200);
        controller.enqueue(new Uint8Array(1000));
      },
    });
    const response = await fetch(`${base}/h/${HASH_A}/upload`, {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("a /upload");
  });

  test("a client that stops reading is cut after idleTimeoutSec and releases its count", async () => {
    const quick = startIngress({ config: { port: 0, idleTimeoutSec: 0.5 }, routes, inflight, log: () => {} });
    const closed = Promise.withResolvers<void>();
    let paused = false;
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: quick.port,
      socket: {
        data(s) {
          if (!paused) {
            paused = true;
            s.pause();
          }
        },
        close: () => closed.resolve(),
      },
    });
    // a response much larger than the socket buffers, which the client never reads
    socket.write(`GET /h/${HASH_A}/huge HTTP/1.1\r\nHost: x\r\n\r\n`);
    await until(() => inflight.count(HASH_A) === 1, 2000, "in flight");
    await until(() => inflight.count(HASH_A) === 0, 3000, "stalled client to be cut");
    socket.terminate();
    await closed.promise;
    await quick.stop(0);
  });
});

describe("forwarding to a peer", () => {
  test("a remote route goes to the peer's ingress with the same Host; loops are refused", async () => {
    // member "far" serves HASH_A locally; member "near" only knows that "far" has it
    const hopAuth = new HopAuth([new Uint8Array(32).fill(7)]);
    const far = startIngress({ config: { port: 0, member: "far" }, routes, hopAuth, log: () => {} });
    const nearRoutes = {
      resolveHash: (hash: string) => ({ kind: "remote" as const, hash, member: "far", baseUrl: far.url }),
    };
    const near = startIngress({
      config: { port: 0, member: "near" },
      routes: nearRoutes,
      hopAuth,
      log: () => {},
    });
    const byHost = await fetch(`${near.url}/x`, { headers: { host: `${HASH_A}.localhost` } });
    expect(byHost.headers.get("x-hashd-hash")).toBe(HASH_A);
    expect(await byHost.text()).toBe("a /x");
    const byPath = await fetch(`${near.url}/h/${HASH_A}/y`);
    expect(await byPath.text()).toBe("a /y");
    // a member that forwards to near, which would forward again: one hop only, then 502
    const bad = startIngress({
      config: { port: 0, member: "bad" },
      routes: { resolveHash: (hash) => ({ kind: "remote", hash, member: "near", baseUrl: near.url }) },
      hopAuth,
      log: () => {},
    });
    const twice = await fetch(`${bad.url}/h/${HASH_A}/`);
    expect(twice.status).toBe(502);
    expect(await twice.text()).toContain("forwarded here by bad but is not live on this member");
    expect(far.stats().unprovenHops).toBe(0);
    for (const ing of [far, near, bad]) await ing.stop(0);
  });

  test("a member with another cluster key is not trusted: its hop is routed as a client's", async () => {
    const far = startIngress({
      config: { port: 0, member: "far" },
      routes,
      hopAuth: new HopAuth([new Uint8Array(32).fill(7)]),
      log: () => {},
    });
    const stranger = startIngress({
      config: { port: 0, member: "stranger" },
      routes: { resolveHash: (hash) => ({ kind: "remote", hash, member: "far", baseUrl: far.url }) },
      hopAuth: new HopAuth([new Uint8Array(32).fill(8)]),
      log: () => {},
    });
    // answered all the same (far runs HASH_A and routes by Host), but the hop was not believed
    const response = await fetch(`${stranger.url}/x`, { headers: { host: `${HASH_A}.localhost` } });
    expect(await response.text()).toBe("a /x");
    expect(far.stats().unprovenHops).toBe(1);
    for (const ing of [far, stranger]) await ing.stop(0);
  });
});
