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
} from "../../../test/support/ingress/servers.ts";
import type { AliasRoute } from "../../model/alias-route.ts";
import { HopAuth } from "./hop-auth.ts";
import { type Ingress, startIngress } from "./server.ts";
import { bucketOf, StickyUse, targetForBucket } from "./sticky.ts";

// Weighted aliases and sticky cookies through real sockets. prod splits A:50,B:50 and may pin A, B
// (HASH_C is live: a private preview no alias points at); solo is plain A; quiet has sticky off.
// front forwards everything to back with a hop proof, as a member without the hash does.
const KEY = new Uint8Array(32).fill(3);
const dir = tempDir();
const upstreams: Upstream[] = [];
const use = new StickyUse();
let back: Ingress;
let front: Ingress;

const routes: Record<string, AliasRoute> = {
  prod: {
    hash: HASH_A,
    split: [
      { hash: HASH_A, weight: 50 },
      { hash: HASH_B, weight: 50 },
    ],
    pinnable: new Set([HASH_A, HASH_B]),
  },
  solo: { hash: HASH_A, pinnable: new Set([HASH_A, HASH_B]) },
  quiet: { hash: HASH_A, pinnable: new Set([HASH_A, HASH_B]) },
};

beforeAll(() => {
  const socks = [HASH_A, HASH_B, HASH_C].map((h) => join(dir.path, `${h}.sock`));
  socks.forEach((s, i) => {
    upstreams.push(startUpstream(s, () => new Response(`service ${i}`)));
  });
  const aliases = { resolveAlias: (name: string) => routes[name] };
  const sticky = { maxAgeSec: 600, disabled: new Set(["quiet"]) };
  back = startIngress({
    config: { port: 0, member: "back" },
    routes: new MapRoutes()
      .local(HASH_A, socks[0] as string)
      .local(HASH_B, socks[1] as string)
      .local(HASH_C, socks[2] as string),
    aliases,
    sticky,
    stickyUse: use,
    hopAuth: new HopAuth([KEY]),
    log: () => {},
  });
  front = startIngress({
    config: { port: 0, member: "front" },
    routes: { resolveHash: (hash) => ({ kind: "remote", hash, member: "back", baseUrl: back.url }) },
    aliases,
    sticky,
    hopAuth: new HopAuth([KEY]),
    log: () => {},
  });
});

afterAll(async () => {
  for (const i of [front, back]) await i.stop(0);
  for (const u of upstreams) u.stop(true);
  dir.remove();
});

const request = (ingress: Ingress, alias: string, cookie?: string) =>
  rawRequest(
    ingress.port,
    `GET / HTTP/1.1\r\nhost: ${alias}.localhost\r\n${cookie ? `cookie: ${cookie}\r\n` : ""}connection: close\r\n\r\n`,
  );
const answeredBy = (head: string) => /\r\nx-hashd-hash: ([a-z0-9]{32})/.exec(head)?.[1];
const cookiesOf = (head: string) =>
  head.split("\r\n").filter((l) => l.toLowerCase().startsWith("set-cookie:"));

describe("weighted alias through the ingress", () => {
  test("through a peer: the member that serves the pinned hash notes the sticky use (its report has the row)", async () => {
    expect(use.untilOf(HASH_B, Date.now())).toBeUndefined();
    const r = await request(front, "solo", `hashd-solo=${HASH_B}`);
    expect(answeredBy(r.head)).toBe(HASH_B);
    expect(use.untilOf(HASH_B, Date.now())).toBeGreaterThan(Date.now() + 590_000);
  });

  test("a client without a cookie lands on its address's share and is pinned to it", async () => {
    const expected = targetForBucket(routes.prod?.split ?? [], bucketOf("prod", "127.0.0.1"));
    for (let i = 0; i < 5; i++) {
      const r = await request(back, "prod");
      expect(r.status).toBe(200);
      expect(answeredBy(r.head)).toBe(expected);
      expect(cookiesOf(r.head)).toEqual([
        `set-cookie: hashd-prod=${expected}; Max-Age=600; Path=/; HttpOnly; SameSite=Lax`,
      ]);
    }
  });

  test("a cookie keeps the client on its hash, sets nothing, and counts as sticky use", async () => {
    for (const h of [HASH_A, HASH_B]) {
      const r = await request(back, "prod", `theme=dark; hashd-prod=${h}`);
      expect(answeredBy(r.head)).toBe(h);
      expect(cookiesOf(r.head)).toEqual([]);
      expect(use.untilOf(h, Date.now())).toBeGreaterThan(Date.now() + 590_000);
    }
    // a plain alias honours a cookie for its earlier target (skew protection after a switch)
    const r = await request(back, "solo", `hashd-solo=${HASH_B}`);
    expect(answeredBy(r.head)).toBe(HASH_B);
  });

  test("hostile cookies: a live private preview, another alias's, a malformed one are all ignored", async () => {
    for (const cookie of [
      `hashd-prod=${HASH_C}`,
      `hashd-solo=${HASH_B}`,
      "hashd-prod=../../etc",
      `hashd-prod=${HASH_B}x`,
    ]) {
      const r = await request(back, "prod", cookie);
      const got = answeredBy(r.head);
      expect(got).not.toBe(HASH_C);
      expect(got).toBe(targetForBucket(routes.prod?.split ?? [], bucketOf("prod", "127.0.0.1")));
      expect(cookiesOf(r.head)).toHaveLength(1);
    }
    expect(use.untilOf(HASH_C, Date.now())).toBeUndefined();
  });

  test("an alias with sticky off sets no cookie and follows none", async () => {
    const r = await request(back, "quiet", `hashd-quiet=${HASH_B}`);
    expect(answeredBy(r.head)).toBe(HASH_A);
    expect(cookiesOf(r.head)).toEqual([]);
  });

  test("through a peer: the first ingress chooses, pins once, and the peer serves that hash", async () => {
    const r = await request(front, "prod", `hashd-prod=${HASH_B}`);
    expect(answeredBy(r.head)).toBe(HASH_B);
    expect(cookiesOf(r.head)).toEqual([]);
    const fresh = await request(front, "prod");
    expect(cookiesOf(fresh.head)).toHaveLength(1);
    expect(r.head.match(/x-hashd-hash/g)).toHaveLength(1);
    expect(fresh.head.match(/x-hashd-hash/g)).toHaveLength(1);
  });
});
