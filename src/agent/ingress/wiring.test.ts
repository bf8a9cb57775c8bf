import { expect, test } from "bun:test";
import { join } from "node:path";
import { Hono } from "hono";
import { HASH_A, MapRoutes, startUpstream, tempDir } from "../../../test/support/ingress/servers.ts";
import {
  Holds,
  HoldTokens,
  holdsApp,
  IdleScaler,
  InFlight,
  PROMETHEUS_CONTENT_TYPE,
  renderMetrics,
  StopGate,
  startIngress,
} from "./index.ts";

// The wiring the agent does (see index.ts), end to end: ingress, scaler, holds API and /metrics.
test("the agent's wiring: proxy a request, take a hold, read /metrics", async () => {
  const dir = tempDir();
  const socketPath = join(dir.path, "a.sock");
  const upstream = startUpstream(socketPath, () => new Response("hello"));
  const inflight = new InFlight();
  const gate = new StopGate();
  const holds = new Holds();
  const stopped: string[] = [];
  const ingress = startIngress({
    config: { port: 0 },
    routes: new MapRoutes().local(HASH_A, socketPath),
    aliases: { resolveAlias: () => undefined },
    inflight,
    gate,
    log: () => {},
  });
  const scaler = new IdleScaler({
    inflight,
    holds,
    gate,
    control: { stopService: async (hash) => void stopped.push(hash) },
    beforeStop: (hash) => ingress.dropIdleUpstreams(hash),
    log: () => {},
  });
  scaler.register(HASH_A, 300);
  const api = new Hono();
  const tokens = HoldTokens.fromSecret(new Uint8Array(32).fill(1));
  api.route("/", holdsApp(holds, tokens));
  api.get("/metrics", (c) =>
    c.body(renderMetrics({ inflight, holds, ingress: ingress.stats(), idleStops: scaler.stops }), 200, {
      "content-type": PROMETHEUS_CONTENT_TYPE,
    }),
  );

  const response = await fetch(`${ingress.url}/`, { headers: { host: `${HASH_A}.localhost` } });
  expect(await response.text()).toBe("hello");
  const hold = await api.request("/v1/holds", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${tokens.tokenFor(HASH_A)}` },
    body: JSON.stringify({ hash: HASH_A, ttlSec: 60 }),
  });
  expect(hold.status).toBe(201);
  const metrics = await api.request("/metrics");
  expect(metrics.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
  const text = await metrics.text();
  expect(text).toContain(`hashd_ingress_requests_total{hash="${HASH_A}"} 1`);
  expect(text).toContain(`hashd_holds{hash="${HASH_A}"} 1`);
  expect(text).toContain("hashd_idle_stops_total 0");
  expect(scaler.tick()).toEqual([]);

  await scaler.close();
  await ingress.stop(0);
  upstream.stop(true);
  dir.remove();
});
