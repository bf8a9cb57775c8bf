/**
 * Prometheus text exposition format 0.0.4, written by hand: hashd exports a handful of gauges and
 * counters, which needs no client library (see src/agent/ingress/metrics.ts for why).
 */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Sample = [labels: Record<string, string | number>, value: number];

/** Appends one metric family (HELP, TYPE, one line per sample) to `out`. */
export function family(
  out: string[],
  name: string,
  type: "gauge" | "counter",
  help: string,
  samples: Sample[],
): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${name} ${type}\n`);
  for (const [labels, value] of samples) out.push(`${name}${formatLabels(labels)} ${formatValue(value)}\n`);
}

function formatLabels(labels: Record<string, string | number>): string {
  const pairs = Object.entries(labels);
  if (pairs.length === 0) return "";
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(String(v))}"`).join(",")}}`;
}

export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}
