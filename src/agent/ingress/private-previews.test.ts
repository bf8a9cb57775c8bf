import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  get,
  HASH_A,
  HASH_B,
  HASH_C,
  MapRoutes,
  rawRequest,
  startUpstream,
  tempDir,
  type Upstream,
} from "../../../test/support/ingress/servers.ts";
import { plainAliasRoute } from "../../model/alias-route.ts";
import type { HashUrlAccess } from "../../model/config.ts";
import { BypassSecret } from "./bypass-token.ts";
import type { GoneInfo } from "./gone.ts";
import { HopAuth } from "./hop-auth.ts";
import { type Ingress, startIngress } from "./server.ts";
import type { AccessControl } from "./types.ts";

// Private previews against real sockets, written as an attacker would try them: every client here
// connects from loopback, so `isLocal` is told which clients count as this host's own.
//   guarded: "token" mode, HASH_A and HASH_B live, HASH_C retired (410), alias prod -> HASH_A,
//            HASH_B aliased; hop proofs under KEY
//   aliased: "aliased" mode; local: "token" mode, every client local
//   front:   a member that forwards everything to guarded with a hop proof; its clients are local
const TOKEN = "s3cret-token.0123456789_abcdefghij~";
const KEY = new Uint8Array(32).fill(9);
const dir = tempDir();
const upstreams: Upstream[] = [];
const secret = new BypassSecret(TOKEN);
let guarded: Ingress;
let aliasedIngress: Ingress;
let localIngress: Ingress;
let front: Ingress;

const retired: GoneInfo = {
  hash: HASH_C,
  retiredAt: Date.UTC(2024, 0, 2),
  byHand: false,
  aliases: [{ name: "prod", hash: HASH_A }],
};

function access(mode: HashUrlAccess, local = false): AccessControl {
  return { mode, aliased: (h) => h === HASH_B, secret: () => secret, isLocal: () => local };
}

type Echo = { service: string; path: string; headers: Record<string, string> };

beforeAll(() => {
  const echo = (service: string) => (request: Request) => {
    const url = new URL(request.url);
    return Response.json({
      service,
      path: url.pathname + url.search,
      headers: Object.fromEntries(request.headers),
    });
  };
  const a = join(dir.path, "a.sock");
  const b = join(dir.path, "b.sock");
  upstreams.push(startUpstream(a, echo("a")), startUpstream(b, echo("b")));
  const routes = () => new MapRoutes().local(HASH_A, a).local(HASH_B, b);
  const aliases = { resolveAlias: (name: string) => (name === "prod" ? plainAliasRoute(HASH_A) : undefined) };
  const common = { routes: routes(), aliases, log: () => {} };
  guarded = startIngress({
    ...common,
    config: { port: 0, member: "guarded" },
    access: access("token"),
    gone: { lookup: (h) => (h === HASH_C ? retired : undefined) },
    hopAuth: new HopAuth([KEY]),
  });
  aliasedIngress = startIngress({
    ...common,
    routes: routes(),
    config: { port: 0 },
    access: access("aliased"),
  });
  localIngress = startIngress({
    ...common,
    routes: routes(),
    config: { port: 0 },
    access: access("token", true),
  });
  front = startIngress({
    config: { port: 0, member: "front" },
    routes: { resolveHash: (hash) => ({ kind: "remote", hash, member: "guarded", baseUrl: guarded.url }) },
    aliases,
    access: access("token", true),
    hopAuth: new HopAuth([KEY]),
    log: () => {},
  });
});

afterAll(async () => {
  for (const i of [guarded, aliasedIngress, localIngress, front]) await i.stop(0);
  for (const u of upstreams) u.stop(true);
  dir.remove();
});

const host = (hash: string) => `${hash}.localhost`;
const raw = (i: Ingress, bytes: string) => rawRequest(i.port, bytes);
const body = <T>(r: { body: string }) => JSON.parse(r.body) as T;

/** What a client without access must get: what a public ingress answers for a hash it does not know. */
async function unknownHash(hash: string, request: (h: string) => string): Promise<string> {
  const blank = startIngress({ routes: new MapRoutes(), config: { port: 0 }, log: () => {} });
  try {
    return (await raw(blank, request(hash))).raw;
  } finally {
    await blank.stop(0);
  }
}

describe("a hash URL without access is exactly an unknown hash", () => {
  test("by Host, by /h/<hash>/, live, retired: the same bytes as a hash no member knows", async () => {
    for (const [hash, request] of [
      [HASH_A, (h: string) => get("/x", host(h))],
      [HASH_A, (h: string) => get(`/h/${h}/x`, "10.1.2.3")],
      [HASH_B, (h: string) => get("/", host(h))], // aliased, but this ingress is in "token" mode
      [HASH_C, (h: string) => get("/", host(h), "accept: application/json\r\n")], // retired: no 410
    ] as const) {
      const denied = await raw(guarded, request(hash));
      expect(denied.status).toBe(404);
      expect(denied.raw).toBe(await unknownHash(hash, request));
    }
  });

  test("a wrong token, in every disguise, is the same 404", async () => {
    const expected = await unknownHash(HASH_A, (h) => get("/", host(h)));
    const wrong = [
      `x-hashd-bypass: ${TOKEN.toUpperCase()}\r\n`,
      `x-hashd-bypass: ${TOKEN.slice(0, -1)}\r\n`,
      `x-hashd-bypass: ${TOKEN}x\r\n`,
      `x-hashd-bypass: ${"A".repeat(12_000)}\r\n`,
      "x-hashd-bypass:\r\n",
      `cookie: hashd-bypass=${TOKEN}\r\n`, // the token is not a cookie
      `cookie: hashd-bypass=${secret.cookieFor(HASH_B, Date.now())}\r\n`, // a cookie for another hash's host
      `cookie: hashd-bypass=${tamper(secret.cookieFor(HASH_A, Date.now()))}\r\n`,
      `cookie: hashd-bypass=${new BypassSecret("z".repeat(40)).cookieFor(HASH_A, Date.now())}\r\n`,
      `authorization: Bearer ${TOKEN}\r\n`,
    ];
    for (const extra of wrong) expect((await raw(guarded, get("/", host(HASH_A), extra))).raw).toBe(expected);
    // in the query: wrong, another case
    for (const q of ["wrong", TOKEN.toUpperCase()])
      expect((await raw(guarded, get(`/?hashd-bypass=${q}`, host(HASH_A)))).raw).toBe(
        await unknownHash(HASH_A, (h) => get(`/?hashd-bypass=${q}`, host(h))),
      );
  });

  test("a forged hop proof is no hop: the request is a client's, and refused", async () => {
    const forged = [
      "x-hashd-hop: front\r\n",
      `x-hashd-hash: ${HASH_A}\r\n`,
      "x-hashd-hop-auth: 1800000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
    ].join("");
    const before = guarded.stats().unprovenHops ?? 0;
    const r = await raw(guarded, get("/", host(HASH_A), forged));
    expect(r.raw).toBe(await unknownHash(HASH_A, (h) => get("/", host(h))));
    // without a Host naming the hash either: the hop header alone names nothing
    expect((await raw(guarded, get("/", "prod.localhost", forged))).status).toBe(200);
    expect(guarded.stats().unprovenHops).toBe(before + 2);
  });

  test("absolute-form: its authority names the hash, whatever Host says", async () => {
    const r = await raw(guarded, `GET http://${host(HASH_A)}/ HTTP/1.1\r\nHost: prod.localhost\r\n\r\n`);
    expect(r.status).toBe(404);
  });

  test("refusals are counted", () => {
    expect(guarded.stats().accessDenied).toBeGreaterThan(10);
  });
});

describe("what opens a hash URL", () => {
  test("alias URLs are public, and /h/<other>/ on an alias host stays the alias's path", async () => {
    const r = await raw(guarded, get(`/h/${HASH_B}/x`, "prod.localhost"));
    expect(r.status).toBe(200);
    expect(body<Echo>(r)).toMatchObject({ service: "a", path: `/h/${HASH_B}/x` });
  });

  test("the header token opens it; the service sees neither the token nor its cookie", async () => {
    const extra = `x-hashd-bypass: ${TOKEN}\r\ncookie: a=1; hashd-bypass=junk; HASHD-BYPASS=x; b=2\r\n`;
    const r = await raw(guarded, get("/p?q=1", host(HASH_A), extra));
    expect(r.status).toBe(200);
    const echoed = body<Echo>(r);
    expect(echoed.path).toBe("/p?q=1");
    expect(echoed.headers.cookie).toBe("a=1; b=2");
    expect(echoed.headers["x-hashd-bypass"]).toBeUndefined();
    expect(r.raw).not.toContain(TOKEN);
    // a Cookie line of only hashd-bypass cookies is dropped whole
    const only = body<Echo>(
      await raw(guarded, get("/", host(HASH_A), `x-hashd-bypass: ${TOKEN}\r\ncookie: hashd-bypass=1\r\n`)),
    );
    expect(only.headers.cookie).toBeUndefined();
  });

  test("?hashd-bypass= once: a redirect without it that sets a cookie for this hash; the cookie then opens it", async () => {
    const r = await raw(guarded, get(`/page?a=1&hashd-bypass=${TOKEN}&b=2`, host(HASH_A)));
    expect(r.status).toBe(307);
    const headers = r.head.split("\r\n");
    expect(headers).toContain("location: /page?a=1&b=2");
    const setCookie = headers.find((l) => l.startsWith("set-cookie: ")) as string;
    expect(setCookie).toMatch(
      /^set-cookie: hashd-bypass=v1\.\d{10}\.[\w-]{43}; Path=\/; Max-Age=604800; HttpOnly; SameSite=Lax$/,
    );
    expect(setCookie).not.toContain("Domain");
    expect(r.raw).not.toContain(TOKEN);
    const cookie = setCookie.slice("set-cookie: ".length, setCookie.indexOf(";"));
    const followed = await raw(guarded, get("/page?a=1&b=2", host(HASH_A), `cookie: x=1; ${cookie}\r\n`));
    expect(followed.status).toBe(200);
    expect(body<Echo>(followed).headers.cookie).toBe("x=1");
    // the same cookie sent to another hash's host opens nothing
    expect((await raw(guarded, get("/", host(HASH_B), `cookie: ${cookie}\r\n`))).status).toBe(404);
  });

  test("on /h/<hash>/ the cookie's path is that hash's prefix", async () => {
    const r = await raw(guarded, get(`/h/${HASH_A}/x?hashd-bypass=${TOKEN}`, "10.1.2.3"));
    expect(r.status).toBe(307);
    expect(r.head).toContain(`\r\nlocation: /h/${HASH_A}/x\r\n`);
    expect(r.head).toContain(`; Path=/h/${HASH_A}/; `);
    const cookie = /set-cookie: (hashd-bypass=[^;]+)/.exec(r.head)?.[1] as string;
    const followed = await raw(guarded, get(`/h/${HASH_A}/x`, "10.1.2.3", `cookie: ${cookie}\r\n`));
    expect(followed.status).toBe(200);
    expect(body<Echo>(followed).path).toBe("/x");
  });

  test("the parameter never makes an open redirect", async () => {
    const r = await raw(guarded, get(`//evil.example/?hashd-bypass=${TOKEN}`, host(HASH_A)));
    expect(r.status).toBe(400);
    expect(r.head).not.toContain("location");
  });

  test("aliased mode: a hash an alias points at is public, another is not", async () => {
    expect((await raw(aliasedIngress, get("/", host(HASH_B)))).status).toBe(200);
    expect((await raw(aliasedIngress, get(`/h/${HASH_B}/`, "10.1.2.3"))).status).toBe(200);
    expect((await raw(aliasedIngress, get("/", host(HASH_A)))).status).toBe(404);
    expect((await raw(aliasedIngress, get("/", host(HASH_A), `x-hashd-bypass: ${TOKEN}\r\n`))).status).toBe(
      200,
    );
  });

  test("a client on this host (a service calling through HASHD_INGRESS) passes in token mode", async () => {
    expect((await raw(localIngress, get("/", host(HASH_A)))).status).toBe(200);
  });

  test("a proven hop passes: the member it came through checked access (and the token never travels)", async () => {
    const r = await raw(
      front,
      get("/via-front", host(HASH_A), `x-hashd-bypass: ${TOKEN}\r\ncookie: hashd-bypass=1\r\n`),
    );
    expect(r.status).toBe(200);
    const echoed = body<Echo>(r);
    expect(echoed.path).toBe("/via-front");
    expect(echoed.headers["x-hashd-bypass"]).toBeUndefined();
    expect(echoed.headers.cookie).toBeUndefined();
  });
});

describe("410 Gone", () => {
  test("to a client with access: when, and where the aliases point now; JSON on request", async () => {
    const text = await raw(guarded, get("/", host(HASH_C), `x-hashd-bypass: ${TOKEN}\r\n`));
    expect(text.status).toBe(410);
    expect(text.head).toContain("HTTP/1.1 410 Gone\r\n");
    expect(text.head).toContain("content-type: text/plain; charset=utf-8");
    expect(text.body).toBe(
      `hash ${HASH_C} was retired at 2024-01-02T00:00:00.000Z.\n` +
        `alias prod pointed at it; http://prod.localhost/ is now http://${HASH_A}.localhost/\n`,
    );
    const json = await raw(
      guarded,
      get(`/h/${HASH_C}/`, "10.1.2.3", `x-hashd-bypass: ${TOKEN}\r\naccept: application/json\r\n`),
    );
    expect(json.status).toBe(410);
    expect(json.head).toContain("content-type: application/json");
    expect(JSON.parse(json.body)).toMatchObject({ error: "gone", hash: HASH_C, reason: "retired" });
  });

  test("a hash no member knows is still a 404", async () => {
    const unknown = "1".repeat(32);
    const r = await raw(guarded, get("/", host(unknown), `x-hashd-bypass: ${TOKEN}\r\n`));
    expect(r.status).toBe(404);
    expect(r.body).toBe(`hash ${unknown} is not live on any member\n`);
  });
});

/** The cookie with its last character changed (always changed: "A" becomes "B"). */
function tamper(cookie: string): string {
  return cookie.slice(0, -1) + (cookie.endsWith("A") ? "B" : "A");
}
