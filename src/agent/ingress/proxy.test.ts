import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  get,
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
  until,
} from "../../../test/support/ingress/servers.ts";
import { plainAliasRoute } from "../../model/alias-route.ts";
import { InFlight } from "./inflight.ts";
import { type Ingress, startIngress } from "./server.ts";

// One ingress, two services on unix sockets: A echoes what it received, B answers in special ways.
const dir = tempDir();
const routes = new MapRoutes();
const inflight = new InFlight();
const upstreams: Upstream[] = [];
let ingress: Ingress;
let base: string;

beforeAll(() => {
  const a = join(dir.path, "a.sock");
  const b = join(dir.path, "b.sock");
  upstreams.push(
    startUpstream(a, async (request) => {
      const url = new URL(request.url);
      const body = request.body ? await request.text() : "";
      const headers = Object.fromEntries(request.headers);
      return Response.json({ method: request.method, path: url.pathname + url.search, headers, body });
    }),
    startUpstream(b, async (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/chunked") {
        const parts = ["one ", "two ", "three"];
        return new Response(
          new ReadableStream({
            async pull(controller) {
              const part = parts.shift();
              if (part === undefined) return controller.close();
              await Bun.sleep(5);
              controller.enqueue(new TextEncoder().encode(part));
            },
          }),
        );
      }
      if (path === "/204") return new Response(null, { status: 204 });
      if (path === "/304") return new Response(null, { status: 304, headers: { etag: '"x"' } });
      if (path === "/big-head") return new Response("ok", { headers: { "x-big": "v".repeat(70_000) } });
      return new Response(`b ${request.method} ${path}`, { headers: { "x-service": "b" } });
    }),
  );
  routes.local(HASH_A, a).local(HASH_B, b).local(HASH_C, join(dir.path, "missing.sock"));
  ingress = startIngress({
    config: { port: 0, member: "test", socketWaitSec: 0.3 },
    routes,
    aliases: { resolveAlias: (name) => (name === "prod" ? plainAliasRoute(HASH_A) : undefined) },
    inflight,
    log: () => {},
  });
  base = `http://127.0.0.1:${ingress.port}`;
});

afterAll(async () => {
  await ingress.stop(0);
  for (const upstream of upstreams) upstream.stop(true);
  dir.remove();
});

type Echo = { method: string; path: string; headers: Record<string, string>; body: string };

describe("routing", () => {
  test("by Host: the service sees its Host, X-Forwarded-*, and the response names the hash", async () => {
    const response = await fetch(`${base}/p?q=1`, { headers: { host: `${HASH_A}.localhost:8080` } });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-hashd-hash")).toBe(HASH_A);
    const echo = (await response.json()) as Echo;
    expect(echo.path).toBe("/p?q=1");
    expect(echo.headers.host).toBe(`${HASH_A}.localhost:8080`);
    expect(echo.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(echo.headers["x-forwarded-host"]).toBe(`${HASH_A}.localhost:8080`);
    expect(echo.headers["x-forwarded-proto"]).toBe("http");
    expect(echo.headers["x-forwarded-prefix"]).toBeUndefined();
  });

  test("by /h/<hash>/ path on any host: prefix stripped and reported", async () => {
    const response = await fetch(`${base}/h/${HASH_A}/deep/path?x=y`);
    expect(response.headers.get("x-hashd-hash")).toBe(HASH_A);
    const echo = (await response.json()) as Echo;
    expect(echo.path).toBe("/deep/path?x=y");
    expect(echo.headers["x-forwarded-prefix"]).toBe(`/h/${HASH_A}`);
  });

  test("by alias", async () => {
    const response = await fetch(`${base}/a`, { headers: { host: "prod.localhost" } });
    expect(response.headers.get("x-hashd-hash")).toBe(HASH_A);
    expect(((await response.json()) as Echo).path).toBe("/a");
  });

  test("/h/<hash> redirects to /h/<hash>/", async () => {
    const response = await fetch(`${base}/h/${HASH_B}?a=1`, { redirect: "manual" });
    expect(response.status).toBe(308);
    expect(response.headers.get("location")).toBe(`/h/${HASH_B}/?a=1`);
  });

  test("errors: 404 not live, 400 malformed, 421 other host, 502 no socket", async () => {
    const notLive = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const r404 = await fetch(`${base}/`, { headers: { host: `${notLive}.localhost` } });
    expect(r404.status).toBe(404);
    expect(await r404.text()).toBe(`hash ${notLive} is not live on any member\n`);
    expect(r404.headers.get("content-type")).toStartWith("text/plain");
    const r400 = await fetch(`${base}/h/${"e".repeat(32)}/`);
    expect(r400.status).toBe(400);
    expect(await r400.text()).toContain("malformed hash in path");
    expect((await fetch(`${base}/`, { headers: { host: "example.org" } })).status).toBe(421);
    const r502 = await fetch(`${base}/`, { headers: { host: `${HASH_C}.localhost` } });
    expect(r502.status).toBe(502);
    expect(await r502.text()).toContain("cannot connect to its socket");
    expect(r502.headers.get("x-hashd-hash")).toBe(HASH_C);
  });

  test("a socket that appears while a request waits for it (an activation under way) answers it", async () => {
    const hash = "11111111111111111111111111111111";
    const socketPath = join(dir.path, "late.sock");
    routes.local(hash, socketPath);
    const answer = fetch(`${base}/late`, { headers: { host: `${hash}.localhost` } });
    await Bun.sleep(150); // within socketWaitSec (0.3 s): the request keeps trying
    const late = startUpstream(socketPath, () => new Response("late but there"));
    const response = await answer;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("late but there");
    late.stop(true);
    routes.routes.delete(hash);
  });

  test("a hash routed to another member while its request waits for the socket here gets a 502", async () => {
    const hash = "22222222222222222222222222222222";
    routes.local(hash, join(dir.path, "never.sock"));
    const answer = fetch(`${base}/`, { headers: { host: `${hash}.localhost` } });
    await Bun.sleep(100);
    routes.routes.set(hash, { kind: "remote", hash, member: "m2", baseUrl: "http://127.0.0.1:9" });
    const response = await answer;
    expect(response.status).toBe(502);
    expect(await response.text()).toContain("its socket here went away");
    routes.routes.delete(hash);
  });

  test("a hash retired here and brought back while its request waits (an alias came back) answers it", async () => {
    const hash = "33333333333333333333333333333333";
    const socketPath = join(dir.path, "revived.sock");
    routes.local(hash, socketPath);
    const answer = fetch(`${base}/back`, { headers: { host: `${hash}.localhost` } });
    await Bun.sleep(60);
    routes.routes.set(hash, { kind: "none", hash }); // retired
    await Bun.sleep(60);
    const revived = startUpstream(socketPath, () => new Response("revived"));
    routes.local(hash, socketPath); // activated again
    const response = await answer;
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("revived");
    revived.stop(true);
    routes.routes.delete(hash);
  });

  test("a hash that stays gone gets a 502 after socketWaitSec", async () => {
    const hash = "44444444444444444444444444444444";
    routes.local(hash, join(dir.path, "gone.sock"));
    const answer = fetch(`${base}/`, { headers: { host: `${hash}.localhost` } });
    await Bun.sleep(60);
    routes.routes.set(hash, { kind: "none", hash });
    const response = await answer;
    expect(response.status).toBe(502);
    expect(await response.text()).toContain("no longer live here");
    routes.routes.delete(hash);
  });
});

describe("HTTP/1.1 details", () => {
  test("request bodies: Content-Length and chunked reach the service whole", async () => {
    const fixed = await fetch(`${base}/h/${HASH_A}/up`, { method: "POST", body: "x".repeat(100_000) });
    expect(((await fixed.json()) as Echo).body).toHaveLength(100_000);
    const raw = await rawRequest(
      ingress.port,
      `POST /h/${HASH_A}/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    expect(raw.status).toBe(200);
    expect(raw.raw).toContain('"body":"hello world"');
  });

  test("a chunked streaming response arrives whole", async () => {
    const response = await fetch(`${base}/h/${HASH_B}/chunked`);
    expect(await response.text()).toBe("one two three");
  });

  test("HEAD, 204 and 304 have no body and the connection stays usable", async () => {
    const raw = await rawExchange(
      ingress.port,
      `HEAD /h/${HASH_B}/x HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET /h/${HASH_B}/204 HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET /h/${HASH_B}/304 HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET /h/${HASH_B}/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(["200", "204", "304", "200"]);
    expect(raw).toEndWith("b GET /last");
  });

  test("pipelined requests are answered in order on one connection", async () => {
    const requests = ["/1", "/2", "/3"].map((p) => get(`/h/${HASH_B}${p}`, "x")).join("");
    const raw = await rawExchange(
      ingress.port,
      `${requests}${get(`/h/${HASH_B}/4`, "x", "Connection: close\r\n")}`,
    );
    expect([...raw.matchAll(/b GET (\/\d)/g)].map((m) => m[1])).toEqual(["/1", "/2", "/3", "/4"]);
  });

  test("Expect: 100-continue passes the interim response through", async () => {
    let sent = false;
    const all = await rawConversation(
      ingress.port,
      `POST /h/${HASH_A}/e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\nConnection: close\r\n\r\n`,
      (received, write) => {
        if (!sent && received.startsWith("HTTP/1.1 100")) {
          sent = true;
          write("0123456789");
        }
        return false; // until the service's answer closes the connection
      },
    );
    expect(all).toStartWith("HTTP/1.1 100 Continue\r\n");
    expect(all).toContain('"body":"0123456789"');
  });

  test("HTTP/1.0 works and closes", async () => {
    const raw = await rawRequest(ingress.port, `GET /h/${HASH_B}/old HTTP/1.0\r\n\r\n`);
    expect(raw.status).toBe(200);
    expect(raw.body).toBe("b GET /old");
  });

  test("a service's oversized response head is a 502", async () => {
    const response = await fetch(`${base}/h/${HASH_B}/big-head`);
    expect(response.status).toBe(502);
    expect(await response.text()).toContain("response head too large");
  });
});

describe("hostile requests get 4xx and the ingress keeps serving", () => {
  // parse errors close the connection (where the next request starts is unknown); routing errors don't need to
  const cases: [string, string, number][] = [
    ["bad Host", get("/", "bad host!"), 400],
    ["no Host", "GET / HTTP/1.1\r\n\r\n", 400],
    ["two Hosts", `GET / HTTP/1.1\r\nHost: ${HASH_A}.localhost\r\nHost: x\r\n\r\n`, 400],
    ["dot-dot path", get("/a/../../etc/passwd", `${HASH_A}.localhost`), 400],
    ["encoded dot-dot", get(`/h/${HASH_A}/%2e%2e/${HASH_B}/`, "localhost"), 400],
    ["short hash", get(`/h/${HASH_A.slice(2)}/`, "localhost"), 400],
    ["long hash", get(`/h/${HASH_A}ab/`, "localhost"), 400],
    ["wrong alphabet", get("/", `${"o".repeat(32)}.localhost`), 400],
    ["oversized headers", get("/", `${HASH_A}.localhost`, `X-Big: ${"a".repeat(20_000)}\r\n`), 431],
    ["oversized request line", `GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    [
      "smuggling CL+TE",
      `POST / HTTP/1.1\r\nHost: ${HASH_A}.localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n`,
      400,
    ],
    ["bad chunk", `POST /h/${HASH_A}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`, 400],
    ["NUL", `GET / HTTP/1.1\r\nHost: ${HASH_A}.localhost\r\nX: \0\r\n\r\n`, 400],
    ["HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505],
    ["binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400],
  ];
  for (const [name, bytes, status] of cases) {
    test(name, async () => {
      const response = await rawRequest(ingress.port, bytes);
      expect(response.status).toBe(status);
      if (status !== 400 || !/Host|hash|segment/.test(response.body)) {
        expect(response.head.toLowerCase()).toContain("connection: close");
      }
      const after = await fetch(`${base}/h/${HASH_B}/still-up`);
      expect(await after.text()).toBe("b GET /still-up");
    });
  }

  test("a header just under the limit passes", async () => {
    const response = await rawRequest(
      ingress.port,
      get(`/h/${HASH_A}/`, "x", `X-Big: ${"a".repeat(8_000)}\r\nConnection: close\r\n`),
    );
    expect(response.status).toBe(200);
  });

  test("a request that never finishes its head gets 408 after headerTimeoutSec", async () => {
    const slow = startIngress({ config: { port: 0, headerTimeoutSec: 0.5 }, routes, log: () => {} });
    const started = Date.now();
    const response = await rawRequest(slow.port, "GET / HTTP/1.1\r\nHost: x", 3000);
    expect(response.status).toBe(408);
    expect(Date.now() - started).toBeLessThan(2000);
    await slow.stop(0);
  });

  test("fuzz: 300 mutated requests, then it still serves and counts nothing in flight", async () => {
    const fuzz = startIngress({
      config: { port: 0, headerTimeoutSec: 0.3 },
      routes,
      inflight,
      log: () => {},
    });
    const templates = [
      get(`/h/${HASH_A}/x?y=1`, "localhost", "Accept: */*\r\n"),
      `POST /h/${HASH_A}/p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello`,
      `POST / HTTP/1.1\r\nHost: ${HASH_A}.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      `GET /ws HTTP/1.1\r\nHost: ${HASH_A}.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
      `${get(`/h/${HASH_B}/1`, "x")}${get(`/h/${HASH_B}/2`, "x")}`,
    ];
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const mutate = (text: string) => {
      const bytes = [...Buffer.from(text, "latin1")];
      for (let i = 0, n = 1 + random(4); i < n; i++) {
        const at = random(bytes.length);
        const op = random(5);
        if (op === 0) bytes[at] = random(256);
        else if (op === 1) bytes.splice(at, 0, random(256));
        else if (op === 2) bytes.splice(at, 1);
        else if (op === 3) bytes.splice(at, 0, ...bytes.slice(at, at + random(20)));
        else bytes.length = at;
      }
      return Buffer.from(bytes);
    };
    for (let batch = 0; batch < 6; batch++) {
      await Promise.all(
        Array.from({ length: 50 }, () =>
          rawExchange(
            fuzz.port,
            mutate(templates[random(templates.length)] as string),
            3000,
            (raw) => raw.length > 0,
          ),
        ),
      );
    }
    await until(() => fuzz.stats().connections === 0, 3000, "fuzz connections to close");
    expect(await (await fetch(`${fuzz.url}/h/${HASH_B}/after-fuzz`)).text()).toBe("b GET /after-fuzz");
    expect(inflight.total).toBe(0);
    await fuzz.stop(0);
  }, 30_000);

  test("in-flight counts are back to zero", () => {
    expect(inflight.total).toBe(0);
  });
});
