import { family } from "../../lib/prometheus.ts";
import type { Holds } from "../holds/holds.ts";
import type { InFlight } from "./inflight.ts";

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
  if (sources.idleStops !== undefined) {
    family(out, "hashd_idle_stops_total", "counter", "Services stopped for being idle.", [
      [{}, sources.idleStops],
    ]);
  }
  return out.join("");
}

export { PROMETHEUS_CONTENT_TYPE } from "../../lib/prometheus.ts";
