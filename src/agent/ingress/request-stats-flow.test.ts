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
import { bucketIndex, LATENCY_BOUNDS_MS } from "../../model/request-stats.ts";
import { HopAuth } from "./hop-auth.ts";
import { renderMetrics } from "./metrics.ts";
import { RequestStats } from "./request-stats.ts";
import { type Ingress, startIngress } from "./server.ts";

// back serves A (answers by path) and B (never answers in time); C's socket is missing.
// front forwards everything to back with a hop proof. Both count.
const KEY = new Uint8Array(32).fill(7);
const dir = tempDir();
const upstreams: Upstream[] = [];
const backStats = new RequestStats();
const frontStats = new RequestStats();
let back: Ingress;
let front: Ingress;
let plain: Ingress;

beforeAll(() => {
  const a = join(dir.path, "a.sock");
  const b = join(dir.path, "b.sock");
  upstreams.push(
    startUpstream(a, async (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/slow") await Bun.sleep(30);
      if (path === "/boom") return new Response("boom", { status: 500 });
      if (path === "/missing") return new Response("no", { status: 404 });
      return new Response("ok");
    }),
    startUpstream(b, async () => {
      await Bun.sleep(3000);
      return new Response("late");
    }),
  );
  const routes = new MapRoutes().local(HASH_A, a).local(HASH_B, b).local(HASH_C, join(dir.path, "c.sock"));
  const aliases = {
    resolveAlias: (name: string) => (name === "www" || name === "api" ? plainAliasRoute(HASH_A) : undefined),
  };
  back = startIngress({
    config: { port: 0, member: "back", socketWaitSec: 0.1, upstreamTimeoutSec: 0.3 },
    routes,
    aliases,
    hopAuth: new HopAuth([KEY]),
    requestStats: backStats,
    log: () => {},
  });
  front = startIngress({
    config: { port: 0, member: "front" },
    routes: { resolveHash: (hash) => ({ kind: "remote", hash, member: "back", baseUrl: back.url }) },
    aliases,
    hopAuth: new HopAuth([KEY]),
    requestStats: frontStats,
    log: () => {},
  });
  plain = startIngress({ config: { port: 0 }, routes, aliases, log: () => {} });
});

afterAll(async () => {
  for (const i of [back, front, plain]) await i.stop(0);
  for (const u of upstreams) u.stop(true);
  dir.remove();
});

const host = (name: string) => `${name}.localhost`;

describe("request counting in the ingress", () => {
  test("per hash and alias: statuses, 5xx as errors, latency from routing to the response head", async () => {
    expect((await rawRequest(back.port, get("/", host(HASH_A)))).status).toBe(200);
    expect((await rawRequest(back.port, get("/slow", host("www")))).status).toBe(200);
    expect((await rawRequest(back.port, get("/boom", host("WWW")))).status).toBe(500);
    expect((await rawRequest(back.port, get(`/h/${HASH_A}/missing`, "127.0.0.1"))).status).toBe(404);
    expect((await rawRequest(back.port, get("/", host("api")))).status).toBe(200);
    const rows = new Map([...backStats.rows()].map((r) => [r.alias, r.counts]));
    expect(rows.get(null)?.requests).toBe(2); // by Host and by /h/ path
    expect(rows.get("www")?.requests).toBe(2);
    expect(rows.get("www")?.errors).toBe(1);
    expect(rows.get("api")?.requests).toBe(1);
    const a = backStats.countsOf(HASH_A);
    expect(a?.requests).toBe(5);
    expect(a?.errors).toBe(1);
    expect(a?.failures).toBe(0);
    expect(a?.buckets.reduce((x, y) => x + y, 0)).toBe(5);
    // /slow took 30 ms or more: one latency at or above the bucket of 30 ms
    const slowBucket = bucketIndex(30);
    expect(
      rows
        .get("www")
        ?.buckets.slice(slowBucket)
        .reduce((x, y) => x + y, 0),
    ).toBe(1);
    expect(LATENCY_BOUNDS_MS[slowBucket]).toBeGreaterThanOrEqual(30);
  });

  test("upstream failures: a missing socket (502) and a silent service (504); not in the histogram", async () => {
    expect((await rawRequest(back.port, get("/", host(HASH_C)), 3000)).status).toBe(502);
    expect((await rawRequest(back.port, get("/", host(HASH_B)), 3000)).status).toBe(504);
    for (const hash of [HASH_B, HASH_C]) {
      const c = backStats.countsOf(hash);
      expect([hash, c?.requests, c?.failures, c?.errors]).toEqual([hash, 1, 1, 0]);
      expect(c?.buckets.every((n) => n === 0)).toBe(true);
    }
  });

  test("not counted: routing errors and unknown hashes", async () => {
    const before = [...backStats.hashes()].length;
    expect((await rawRequest(back.port, get("/", host("nope")))).status).toBe(404);
    expect((await rawRequest(back.port, get("/", host("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")))).status).toBe(
      404,
    );
    expect([...backStats.hashes()].length).toBe(before);
  });

  test("without requestStats nothing is counted", async () => {
    expect((await rawRequest(plain.port, get("/", host(HASH_A)))).status).toBe(200);
    expect(plain.requestStats).toBeUndefined();
  });

  test("/metrics: the series per hash and alias, and a histogram at every other bound", () => {
    const text = renderMetrics({ requestStats: backStats });
    expect(text).toContain(`hashd_ingress_upstream_requests_total{hash="${HASH_A}",alias="www"} 2\n`);
    expect(text).toContain(`hashd_ingress_errors_total{hash="${HASH_A}",alias="www"} 1\n`);
    expect(text).toContain(`hashd_ingress_upstream_failures_total{hash="${HASH_B}",alias=""} 1\n`);
    expect(text).toContain("# TYPE hashd_ingress_latency_seconds histogram\n");
    expect(text).toContain(
      `hashd_ingress_latency_seconds_bucket{hash="${HASH_A}",alias="www",le="+Inf"} 2\n`,
    );
    expect(text).toContain(`hashd_ingress_latency_seconds_count{hash="${HASH_A}",alias="www"} 2\n`);
    expect(text).toContain(`hashd_ingress_latency_seconds_bucket{hash="${HASH_A}",alias="",le="0.00025"} `);
    expect(text).toContain(`le="131.072"`);
    const les = [
      ...text.matchAll(
        /hashd_ingress_latency_seconds_bucket\{hash="[^"]+",alias="api",le="([^"]+)"\} (\d+)/g,
      ),
    ];
    expect(les.length).toBe(21); // 20 bounds (every other of 39) and +Inf
    const values = les.map((m) => Number(m[2]));
    expect(values).toEqual([...values].sort((x, y) => x - y)); // cumulative
  });
  test("a request forwarded to a peer is counted where it is served (the peer, with its alias), not where it came in", async () => {
    const before = backStats.countsOf(HASH_A) ?? { requests: 0, errors: 0 };
    const wwwBefore =
      [...backStats.rows()].find((r) => r.hash === HASH_A && r.alias === "www")?.counts.requests ?? 0;
    expect((await rawRequest(front.port, get("/", host("www")))).status).toBe(200);
    expect((await rawRequest(front.port, get("/boom", host(HASH_A)))).status).toBe(500);
    const c = backStats.countsOf(HASH_A);
    expect([(c?.requests ?? 0) - before.requests, (c?.errors ?? 0) - before.errors]).toEqual([2, 1]);
    expect([...backStats.rows()].find((r) => r.hash === HASH_A && r.alias === "www")?.counts.requests).toBe(
      wwwBefore + 1,
    );
    expect(frontStats.countsOf(HASH_A)).toBeUndefined();
  });
});
