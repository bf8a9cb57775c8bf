/**
 * The hashd ingress: every hash at http://<hash>.<zone>/, /h/<hash>/ and http://<alias>.<zone>/
 * (and over HTTPS with config.tls: tls.ts), in-flight counting, holds, and scale to zero. Wiring, done by the agent (compose/start-serving.ts,
 * which wiring.test.ts runs):
 *
 *   const inflight = new InFlight();
 *   const gate = new StopGate();
 *   const holds = new Holds();
 *   const hopAuth = HopAuth.create(cluster.derivedKeys(HOP_KEY_INFO));
 *   const ingress = startIngress({ config, routes, aliases, inflight, gate, hopAuth });
 *   const scaler = new IdleScaler({
 *     inflight, holds, gate, control,
 *     beforeStop: (hash) => ingress.dropIdleUpstreams(hash),
 *   });
 *   scaler.start();
 *   scaler.register(hash, manifest.idleStopSec); // on activate and re-adopt; unregister on retire
 *   serviceApi.route("/", holdsApp(holds, HoldTokens.open(stateDir)));
 *   // GET /metrics on the control API:
 *   renderMetrics({ inflight, holds, ingress: ingress.stats(), idleStops: scaler.stops, requestStats });
 *
 * Request counting for progressive delivery: `const requestStats = new RequestStats()` passed to
 * startIngress (and to renderMetrics); this member's report carries requestStats.countsOf(hash), and
 * a retired hash is dropped with requestStats.forget(hash).
 */

export { HoldTokens, holdTokenPaths, installHoldToken } from "../holds/hold-tokens.ts";
export { type Hold, Holds, type HoldsOptions } from "../holds/holds.ts";
export { holdsApp } from "../holds/holds-app.ts";
export { BYPASS_NAME, decideAccess, isLocalClient } from "./access.ts";
export { BypassSecret, BypassTokenFile, readBypassToken } from "./bypass-token.ts";
export { INGRESS_DEFAULTS, ingressConfig } from "./config.ts";
export { GONE_ALIASES_MAX, type GoneInfo, goneBody } from "./gone.ts";
export { HOP_KEY_INFO, HopAuth } from "./hop-auth.ts";
export { IdleScaler, type IdleScalerOptions, type ScalePhase } from "./idle-scaler.ts";
export { InFlight, type InFlightEntry, type InFlightSnapshot } from "./inflight.ts";
export { type MetricSources, PROMETHEUS_CONTENT_TYPE, renderMetrics, renderRequestStats } from "./metrics.ts";
export {
  MAX_WINDOW_MS,
  RequestStats,
  type RequestStatsOptions,
  type RequestStatsRow,
  SLOT_MS,
} from "./request-stats.ts";
export { notLiveMessage, type Routing, routeTarget } from "./route.ts";
export { type Ingress, type IngressOptions, startIngress } from "./server.ts";
export {
  bucketOf,
  chooseAliasTarget,
  DEFAULT_STICKY,
  type StickyConfig,
  StickyUse,
  stickyCookieHash,
  targetForBucket,
} from "./sticky.ts";
export { StopGate } from "./stop-gate.ts";
export type {
  AccessControl,
  AliasResolver,
  GoneHashes,
  IngressConfig,
  IngressLog,
  Route,
  RouteTable,
  ServiceControl,
} from "./types.ts";
