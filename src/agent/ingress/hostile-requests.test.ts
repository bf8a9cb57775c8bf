/**
 * The security review's reproductions against the ingress (issue 12), each sent as raw bytes to a
 * real ingress in front of a real HTTP server (Bun.serve on a unix socket, as a service behind its
 * systemd socket). What the service saw is recorded, so a request smuggled past the ingress shows
 * up as a request the client never sent through it.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  complete,
  HASH_A,
  HASH_B,
  HASH_C,
  MapRoutes,
  rawConversation,
  rawExchange,
  rawRequest,
  startUpstream,
  tempDir,
  type Upstream,
} from "../../../test/support/ingress/servers.ts";
import { HopAuth } from "./hop-auth.ts";
import { type Ingress, startIngress } from "./server.ts";

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

const dir = tempDir();
const routes = new MapRoutes();
const seen: Seen[] = [];
/** bytes that reached the raw service behind HASH_C: a refused request must leave this empty */
let rawSeen = "";
let rawService: ReturnType<typeof Bun.listen> | undefined;
let upstream: Upstream;
let ingress: Ingress;
const host = `${HASH_A}.localhost`;
const rawHost = `${HASH_C}.localhost`;

beforeAll(() => {
  const socketPath = join(dir.path, "a.sock");
  upstream = startUpstream(socketPath, async (request) => {
    const url = new URL(request.url);
    const body = await request.text();
    seen.push({ method: request.method, path: url.pathname, headers: request.headers.toJSON(), body });
    return new Response(`ok ${request.method} ${url.pathname} ${body.length}`);
  });
  routes.local(HASH_A, socketPath);
  // a service that parses nothing: it shows exactly what the ingress forwarded, even what a strict
  // HTTP server would have refused by itself
  const rawPath = join(dir.path, "raw.sock");
  rmSync(rawPath, { force: true });
  rawService = Bun.listen({
    unix: rawPath,
    socket: {
      data(_socket, data) {
        rawSeen += Buffer.from(data).toString("latin1");
      },
    },
  });
  routes.local(HASH_C, rawPath);
  ingress = startIngress({ config: { port: 0, headerTimeoutSec: 10 }, routes, log: () => {} });
});

afterAll(async () => {
  await ingress.stop(0);
  upstream.stop(true);
  rawService?.stop(true);
  dir.remove();
});

beforeEach(() => {
  seen.length = 0;
  rawSeen = "";
});

/** Sends bytes; resolves with what came back once a whole response is there, the ingress closes, or 3 s pass. */
const send = (bytes: string) => rawExchange(ingress.port, Buffer.from(bytes, "latin1"), 3000, complete);
const statusOf = (raw: string) => Number(raw.slice(9, 12));

describe("1. Connection cannot make a framing header or Host hop-by-hop", () => {
  const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";

  test("Connection: content-length: the service sees one POST with its body, never the smuggled GET", async () => {
    const raw = await send(
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nConnection: content-length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    );
    expect(statusOf(raw)).toBe(200);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(["POST /a"]);
    expect(seen[0]?.body).toBe(smuggled);
  });

  test("Connection: transfer-encoding: the chunked body is framed as chunked upstream too", async () => {
    const chunk = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
    const raw = await send(
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}`,
    );
    expect(statusOf(raw)).toBe(200);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(["POST /a"]);
    expect(seen[0]?.body).toBe(smuggled);
  });

  test("another client's request on the pooled connection never becomes the smuggled POST's body", async () => {
    // the attacker's body is a POST whose Content-Length would swallow the next request upstream
    const trap = `POST /store HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n`;
    const attack = send(
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nConnection: content-length\r\nContent-Length: ${trap.length}\r\n\r\n${trap}`,
    );
    expect(statusOf(await attack)).toBe(200);
    const victim = await rawRequest(
      ingress.port,
      `GET /mine HTTP/1.1\r\nHost: ${host}\r\nCookie: session=victim-secret\r\nConnection: close\r\n\r\n`,
      3000,
    );
    expect(victim.status).toBe(200);
    expect(victim.body).toBe("ok GET /mine 0");
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(["POST /a", "GET /mine"]);
    expect(seen.some((s) => s.body.includes("victim-secret"))).toBe(false);
  });

  test("Connection: host: the service still gets the Host", async () => {
    const raw = await send(`GET /h HTTP/1.1\r\nHost: ${host}\r\nConnection: host, close\r\n\r\n`);
    expect(statusOf(raw)).toBe(200);
    expect(seen[0]?.headers.host).toBe(host);
  });

  test("other headers a client names in Connection are still dropped", async () => {
    await send(`GET /h HTTP/1.1\r\nHost: ${host}\r\nConnection: x-private, close\r\nX-Private: 1\r\n\r\n`);
    expect(seen[0]?.headers["x-private"]).toBeUndefined();
  });
});

describe("2. a client cannot pass as a peer ingress", () => {
  const spoof = (extra: string) =>
    send(
      `GET /who HTTP/1.1\r\nHost: ${host}\r\nX-Hashd-Hop: web2\r\nX-Hashd-Hash: ${HASH_A}\r\n${extra}` +
        "X-Forwarded-Host: victim.example\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
    );

  test("a hop header without proof is ignored: forwarded headers are the ingress's own", async () => {
    expect(statusOf(await spoof(""))).toBe(200);
    expect(seen[0]?.headers["x-forwarded-host"]).toBe(host);
    expect(seen[0]?.headers["x-forwarded-proto"]).toBe("http");
    expect(seen[0]?.headers["x-hashd-hop"]).toBeUndefined();
    expect(ingress.stats().unprovenHops).toBeGreaterThan(0);
  });

  test("a hop proof made with another key is ignored on a member that has a key", async () => {
    const member = startIngress({
      config: { port: 0 },
      routes,
      hopAuth: new HopAuth([new Uint8Array(32).fill(1)]),
      log: () => {},
    });
    const forged = new HopAuth([new Uint8Array(32).fill(2)]).sign(
      {
        member: "web2",
        hash: HASH_A,
        method: "GET",
        target: "/who",
        forwardedFor: "6.6.6.6",
        forwardedHost: "victim.example",
        forwardedProto: "https",
      },
      Date.now(),
    );
    const raw = await rawExchange(
      member.port,
      `GET /who HTTP/1.1\r\nHost: ${host}\r\nX-Hashd-Hop: web2\r\nX-Hashd-Hash: ${HASH_A}\r\nX-Hashd-Hop-Auth: ${forged}\r\n` +
        "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: victim.example\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
      3000,
      complete,
    );
    expect(statusOf(raw)).toBe(200);
    expect(seen[0]?.headers["x-forwarded-host"]).toBe(host);
    expect(seen[0]?.headers["x-forwarded-proto"]).toBe("http");
    await member.stop(0);
  });

  test("an unproven hop naming another hash does not choose the hash", async () => {
    const raw = await send(
      `GET /who HTTP/1.1\r\nHost: ${host}\r\nX-Hashd-Hop: web2\r\nX-Hashd-Hash: ${HASH_B}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(200);
    expect(raw).toContain(`x-hashd-hash: ${HASH_A}`);
  });
});

describe("3. only SP and HTAB are optional whitespace", () => {
  test("Transfer-Encoding: chunked\\xa0 is an unknown coding (501), not chunked", async () => {
    const raw = await send(
      `POST /a HTTP/1.1\r\nHost: ${rawHost}\r\nTransfer-Encoding: chunked\xa0\r\n\r\n0\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(501);
    expect(rawSeen).toBe("");
  });
  test("Content-Length: \\xa05 is malformed (400)", async () => {
    const raw = await send(`POST /a HTTP/1.1\r\nHost: ${rawHost}\r\nContent-Length: \xa05\r\n\r\nhello`);
    expect(statusOf(raw)).toBe(400);
    expect(rawSeen).toBe("");
  });
  test("SP and HTAB around a value are still fine", async () => {
    const raw = await send(
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: \t5 \r\nConnection: close\r\n\r\nhello`,
    );
    expect(statusOf(raw)).toBe(200);
    expect(seen[0]?.body).toBe("hello");
  });
});

describe("4. framing the service could read differently is refused, never forwarded", () => {
  const chunkedPost = (body: string) =>
    send(`POST /a HTTP/1.1\r\nHost: ${rawHost}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
  const cases: [string, string][] = [
    ["a tab and junk after a chunk size", "5\tjunk\r\nhello\r\n0\r\n\r\n"],
    ["a space after a chunk size", "5 \r\nhello\r\n0\r\n\r\n"],
    ["junk after a chunk size", "5x\r\nhello\r\n0\r\n\r\n"],
    ["NUL in a chunk extension", "5;a=\0b\r\nhello\r\n0\r\n\r\n"],
    ["a control byte in a chunk extension", "5;a\x01\r\nhello\r\n0\r\n\r\n"],
    ["a quoted string in a chunk extension", '5;a="b c"\r\nhello\r\n0\r\n\r\n'],
    ["a trailer without a colon", "5\r\nhello\r\n0\r\nnonsense\r\n\r\n"],
    ["obs-fold in the trailers", "5\r\nhello\r\n0\r\nX-T: a\r\n folded\r\n\r\n"],
    ["a space before a trailer's colon", "5\r\nhello\r\n0\r\nX-T : a\r\n\r\n"],
    ["NUL in a trailer value", "5\r\nhello\r\n0\r\nX-T: a\0\r\n\r\n"],
    ["a bare LF ending a trailer", "5\r\nhello\r\n0\r\nX-T: a\n\r\n"],
  ];
  for (const [name, body] of cases) {
    test(`${name}: 400`, async () => {
      const raw = await chunkedPost(body);
      expect(statusOf(raw)).toBe(400);
      expect(rawSeen).toBe("");
    });
  }

  test("well-formed extensions and trailers pass", async () => {
    const raw = await send(
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        "5;name=v;x\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n",
    );
    expect(statusOf(raw)).toBe(200);
    expect(seen[0]?.body).toBe("hello");
  });

  test("a tab inside the request target: 400", async () => {
    const raw = await send(`GET /a\tb HTTP/1.1\r\nHost: ${rawHost}\r\n\r\n`);
    expect(statusOf(raw)).toBe(400);
    expect(rawSeen).toBe("");
  });
});

describe("5. interim responses, absolute-form, bare LF", () => {
  test("a service that sends 100 Continue without end gets a 502 after a few", async () => {
    const socketPath = join(dir.path, "flood.sock");
    rmSync(socketPath, { force: true });
    let sent = 0;
    const flood = Bun.listen({
      unix: socketPath,
      socket: {
        data(socket) {
          // 2,000 interim responses in one write, then (never reached by a client) a final one
          const one = "HTTP/1.1 100 Continue\r\n\r\n";
          socket.write(`${one.repeat(2000)}HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n`);
          sent += 2000;
        },
      },
    });
    routes.local(HASH_B, socketPath);
    const raw = await rawExchange(ingress.port, `GET / HTTP/1.1\r\nHost: ${HASH_B}.localhost\r\n\r\n`, 3000);
    expect(sent).toBe(2000);
    const interim = raw.split("HTTP/1.1 100 Continue").length - 1;
    expect(interim).toBeLessThanOrEqual(8);
    expect(raw).toContain("HTTP/1.1 502 Bad Gateway");
    expect(raw).toContain("interim responses");
    flood.stop(true);
    routes.routes.delete(HASH_B);
  });

  test("absolute-form is accepted: its authority is the Host, the service sees origin-form", async () => {
    const raw = await send(
      `GET http://${host}/abs?q=1 HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(200);
    expect(seen[0]?.path).toBe("/abs");
    expect(seen[0]?.headers.host).toBe(host);
    const bare = await send(`GET http://${host} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(statusOf(bare)).toBe(200);
    expect(seen[1]?.path).toBe("/");
  });

  test("absolute-form with userinfo or without a host is refused", async () => {
    expect(statusOf(await send(`GET http://u@${host}/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`))).toBe(400);
    expect(statusOf(await send(`GET http:///x HTTP/1.1\r\nHost: ${host}\r\n\r\n`))).toBe(400);
    expect(seen).toEqual([]);
  });

  test("a head that trickles in a byte at a time: a bare LF anywhere is found, a good head is served", async () => {
    const trickle = async (text: string) => {
      let received = "";
      const closed = Promise.withResolvers<void>();
      const socket = await Bun.connect({
        hostname: "127.0.0.1",
        port: ingress.port,
        socket: {
          data(_s, data) {
            received += Buffer.from(data).toString("latin1");
          },
          close: () => closed.resolve(),
        },
      });
      for (const c of text) {
        socket.write(c);
        await Bun.sleep(1);
      }
      await Promise.race([closed.promise, Bun.sleep(3000)]);
      socket.end();
      return received;
    };
    expect(statusOf(await trickle(`GET / HTTP/1.1\r\nHost: ${rawHost}\r\nX-A: 1\nX-B: 2\r\n\r\n`))).toBe(400);
    expect(rawSeen).toBe("");
    const served = await trickle(`GET /slow HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(statusOf(served)).toBe(200);
    expect(seen.map((s) => s.path)).toEqual(["/slow"]);
  });

  test("bare LF line endings get 400 at once, not a 408 after the header timeout", async () => {
    const started = Date.now();
    const raw = await rawConversation(
      ingress.port,
      `GET / HTTP/1.1\nHost: ${host}\n\n`,
      (received) => received.includes("\r\n\r\n"),
      8000,
    );
    expect(statusOf(raw)).toBe(400);
    expect(Date.now() - started).toBeLessThan(5000); // the header timeout here is 10 s
    expect(seen).toEqual([]);
  });
});

describe("Connection: close is answered in kind (RFC 9112 9.6)", () => {
  test("a client that asks to close gets connection: close once, and the connection ends", async () => {
    const started = performance.now();
    const raw = await rawExchange(
      ingress.port,
      `GET /bye HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      20_000,
    );
    const head = raw.slice(0, raw.indexOf("\r\n\r\n"));
    expect(statusOf(raw)).toBe(200);
    expect(head.match(/\r\nconnection:[^\r]*/gi)).toEqual(["\r\nconnection: close"]);
    expect(performance.now() - started).toBeLessThan(15_000); // closed by the ingress, not by the wait
  });

  test("a keep-alive client is not told to close", async () => {
    const raw = await send(`GET /stay HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    expect(statusOf(raw)).toBe(200);
    expect(raw.slice(0, raw.indexOf("\r\n\r\n"))).not.toMatch(/\r\nconnection:/i);
  });
});
