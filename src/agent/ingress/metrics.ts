import { escapeLabel, family } from "../../lib/prometheus.ts";
import { BUCKETS, LATENCY_BOUNDS_MS } from "../../model/request-stats.ts";
import type { Holds } from "../holds/holds.ts";
import type { InFlight } from "./inflight.ts";
import type { RequestStats } from "./request-stats.ts";

/**
 * Prometheus text exposition format 0.0.4, written by hand: hashd exports a handful of gauges and
 * counters it already keeps, and the format is a few lines of text. prom-client would add its own
 * registry and metric objects to keep in step with these counters, plus a dependency in the compiled
 * binary, for no gain. The rules that matter are followed: one HELP and TYPE per family, label
 * values escaped (backslash, double quote, newline), counters end in _total.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */

export interface IngressStatsView {
  /** open client connections */
  connections: number;
  /** responses the ingress wrote itself (errors and redirects), by status */
  answered: ReadonlyMap<number, number>;
  /** requests whose hop header no cluster key proved */
  unprovenHops?: number;
  /** requests for hash URLs refused for want of access (private previews) */
  accessDenied?: number;
}

export interface MetricSources {
  inflight?: InFlight;
  holds?: Holds;
  ingress?: IngressStatsView;
  /** idle stops started so far */
  idleStops?: number;
  /** per hash and alias: requests, errors, upstream failures, latency (request-stats.ts) */
  requestStats?: RequestStats;
}

export function renderMetrics(sources: MetricSources): string {
  const out: string[] = [];
  const { inflight, holds, ingress } = sources;
  if (inflight) {
    const entries = [...inflight.entriesView()];
    family(
      out,
      "hashd_ingress_in_flight",
      "gauge",
      "Requests being proxied now (open WebSockets included).",
      [[{}, inflight.total]],
    );
    family(
      out,
      "hashd_ingress_hash_in_flight",
      "gauge",
      "Requests being proxied now, per hash.",
      entries.map((e) => [{ hash: e.hash }, e.inFlight]),
    );
    family(
      out,
      "hashd_ingress_requests_total",
      "counter",
      "Requests routed to a hash since the agent started.",
      entries.map((e) => [{ hash: e.hash }, e.total]),
    );
  }
  if (holds) {
    const counts = new Map<string, number>();
    for (const hold of holds.list()) counts.set(hold.hash, (counts.get(hold.hash) ?? 0) + 1);
    family(
      out,
      "hashd_holds",
      "gauge",
      "Live holds per hash.",
      [...counts].map(([hash, n]) => [{ hash }, n]),
    );
  }
  if (ingress) {
    family(out, "hashd_ingress_connections", "gauge", "Open client connections.", [
      [{}, ingress.connections],
    ]);
    family(
      out,
      "hashd_ingress_answered_total",
      "counter",
      "Responses written by the ingress itself (routing errors, timeouts, upstream failures), by status.",
      [...ingress.answered].map(([status, n]) => [{ status }, n]),
    );
    if (ingress.unprovenHops !== undefined) {
      family(
        out,
        "hashd_ingress_unproven_hops_total",
        "counter",
        "Requests with a peer hop header that no cluster key proved (routed as any client's).",
        [[{}, ingress.unprovenHops]],
      );
    }
    if (ingress.accessDenied !== undefined) {
      family(
        out,
        "hashd_ingress_access_denied_total",
        "counter",
        "Requests for a hash URL refused for want of access (answered as an unknown hash: 404).",
        [[{}, ingress.accessDenied]],
      );
    }
  }
  if (sources.requestStats) renderRequestStats(out, sources.requestStats);
  if (sources.idleStops !== undefined) {
    family(out, "hashd_idle_stops_total", "counter", "Services stopped for being idle.", [
      [{}, sources.idleStops],
    ]);
  }
  return out.join("");
}

export { PROMETHEUS_CONTENT_TYPE } from "../../lib/prometheus.ts";

/**
 * The le values of hashd_ingress_latency_seconds: every other bound of LATENCY_BOUNDS_MS (factor 2,
 * 0.25 ms to 131 s), so each is the exact cumulative sum of the sqrt(2) buckets up to it; 20 series
 * per (hash, alias) instead of 39.
 */
const EXPORTED_BOUNDS = LATENCY_BOUNDS_MS.flatMap((_, i) =>
  // 0.25 ms * 2^(i/2), written without the rounding of SQRT2 ** i (0.0005, not 0.0005000000000000001)
  i % 2 === 0 ? [[i, (0.25 * 2 ** (i / 2)) / 1000] as const] : [],
);

/**
 * The ingress's request counts per hash and alias (alias "" for requests by hash URL). The family
 * hashd_ingress_requests_total{hash} (InFlight) already counts routed requests, hops included; these
 * count what progressive delivery reads: requests with an outcome (the service's response head or an
 * upstream failure) that came to this member first.
 */
export function renderRequestStats(out: string[], stats: RequestStats): void {
  const rows = [...stats.rows()];
  const labelled = rows.map((r) => [{ hash: r.hash, alias: r.alias ?? "" }, r] as const);
  family(
    out,
    "hashd_ingress_upstream_requests_total",
    "counter",
    "Requests that got the service's answer or an upstream failure, per hash and alias (\"\": by hash URL); a request is counted by the member that serves it (a peer's hop too, not where it came in).",
    labelled.map(([labels, r]) => [labels, r.counts.requests]),
  );
  family(
    out,
    "hashd_ingress_errors_total",
    "counter",
    "Answers of the service with a status of 500 or more, per hash and alias.",
    labelled.map(([labels, r]) => [labels, r.counts.errors]),
  );
  family(
    out,
    "hashd_ingress_upstream_failures_total",
    "counter",
    "Requests the ingress answered 502/503/504 for want of the service's answer (refused, reset, timed out, malformed), per hash and alias.",
    labelled.map(([labels, r]) => [labels, r.counts.failures]),
  );
  const name = "hashd_ingress_latency_seconds";
  out.push(
    `# HELP ${name} Time from routing a request to the arrival of the service's response head, per hash and alias.\n# TYPE ${name} histogram\n`,
  );
  for (const r of rows) {
    const labels = `hash="${escapeLabel(r.hash)}",alias="${escapeLabel(r.alias ?? "")}"`;
    const { buckets } = r.counts;
    let cumulative = 0;
    let next = 0;
    for (const [index, seconds] of EXPORTED_BOUNDS) {
      while (next <= index) cumulative += buckets[next++] as number;
      out.push(`${name}_bucket{${labels},le="${seconds}"} ${cumulative}\n`);
    }
    while (next < BUCKETS) cumulative += buckets[next++] as number;
    out.push(`${name}_bucket{${labels},le="+Inf"} ${cumulative}\n`);
    out.push(`${name}_sum{${labels}} ${r.sumMs / 1000}\n`);
    out.push(`${name}_count{${labels}} ${cumulative}\n`);
  }
  if (stats.dropped > 0 || stats.size > 0) {
    family(
      out,
      "hashd_ingress_uncounted_requests_total",
      "counter",
      "Requests not counted per hash because the ingress counts that many distinct hashes already.",
      [[{}, stats.dropped]],
    );
  }
}
