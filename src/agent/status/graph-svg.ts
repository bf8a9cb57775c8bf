/**
 * The dependency graph as inline SVG: which hashes are drawn (graphOf), and the drawing
 * (renderGraphSvg). Both pure; the colours are SVG presentation attributes, so the picture needs
 * no stylesheet and no script.
 */
import { isStoreHash } from "../../model/names.ts";
import { DEFAULT_LAYOUT, type Layout, type LayoutOptions, layoutGraph } from "./graph-layout.ts";
import { html, type SafeHtml, safeHref } from "./html.ts";
import type { DeploymentState, StatusHash } from "./types.ts";

/** A node's colour key: a deployment state, or "unknown" for a hash no member reports. */
export type NodeState = DeploymentState | "unknown";

export const PALETTE: Record<NodeState, { fill: string; stroke: string; text: string }> = {
  ready: { fill: "#dcfce7", stroke: "#16a34a", text: "#14532d" },
  activating: { fill: "#fef9c3", stroke: "#ca8a04", text: "#713f12" },
  fetching: { fill: "#e0f2fe", stroke: "#0284c7", text: "#0c4a6e" },
  idle: { fill: "#eef2f7", stroke: "#64748b", text: "#1e293b" },
  draining: { fill: "#ffedd5", stroke: "#ea580c", text: "#7c2d12" },
  failed: { fill: "#fee2e2", stroke: "#dc2626", text: "#7f1d1d" },
  retired: { fill: "#f5f5f5", stroke: "#a3a3a3", text: "#525252" },
  unknown: { fill: "#ffffff", stroke: "#737373", text: "#404040" },
};

export interface GraphNode {
  id: string;
  label: string;
  state: NodeState;
  href?: string;
  /** tooltip text */
  title: string;
  /** a service node: its versions, one line each (at most MAX_LINES, then "+N more") */
  versions?: { hash: string; state: NodeState; tag: string; href?: string }[];
}

export interface Graph {
  nodes: GraphNode[];
  edges: { from: string; to: string }[];
}

/** The state that best describes a hash cluster-wide: this host's, else the liveliest report. */
const PREFERENCE: readonly DeploymentState[] = [
  "ready",
  "activating",
  "fetching",
  "idle",
  "draining",
  "failed",
  "retired",
];

export function nodeState(h: StatusHash): NodeState {
  if (h.state !== null && h.state !== "retired") return h.state;
  const states = new Set(h.hosts.map((x) => x.state));
  return PREFERENCE.find((s) => states.has(s)) ?? h.state ?? "unknown";
}

/**
 * Hashes that run (or failed) somewhere, plus everything they reference: a referenced hash that
 * nobody reports is drawn as "unknown" (a caller whose backend is missing). Retired hashes that
 * nothing running references are left out: the picture is of what runs now.
 */
export function graphOf(hashes: readonly StatusHash[]): Graph {
  const byHash = new Map(hashes.map((h) => [h.hash, h]));
  const shown = new Map<string, GraphNode>();
  const queue = hashes
    .filter((h) => nodeState(h) !== "retired" && nodeState(h) !== "unknown")
    .map((h) => h.hash);
  while (queue.length) {
    const id = queue.shift() as string;
    if (shown.has(id)) continue;
    const h = byHash.get(id);
    const state = h ? nodeState(h) : "unknown";
    const name = h?.name ?? "?";
    const where = h?.hosts.length
      ? h.hosts.map((x) => `${x.member}: ${x.state}`).join(", ")
      : "no member reports it";
    shown.set(id, {
      id,
      label: name,
      state,
      ...(isStoreHash(id) && safeHref(h?.url) ? { href: h?.url as string } : {}),
      title: `${name} ${id}\n${state}; ${where}${h?.verdict ? `\n${h.verdict}` : ""}`,
    });
    for (const ref of h?.refs ?? []) if (!shown.has(ref)) queue.push(ref);
  }
  const edges = [...shown.keys()].flatMap((id) =>
    (byHash.get(id)?.refs ?? []).filter((to) => shown.has(to)).map((to) => ({ from: id, to })),
  );
  return { nodes: [...shown.values()], edges };
}

/** Layout of the service graph: narrower nodes than the per-hash graph, so 6 layers fit 1,200 px. */
export const SERVICE_LAYOUT: LayoutOptions = {
  nodeWidth: 160,
  nodeHeight: 46,
  gapX: 48,
  gapY: 12,
  padding: 8,
};
export const MAX_LINES = 3;
const LINE = 15;

/** The height a service node needs for its versions' lines. */
export function serviceNodeHeight(graph: Graph): number {
  const most = Math.max(1, ...graph.nodes.map((n) => Math.min(MAX_LINES + 1, n.versions?.length ?? 1)));
  return 26 + most * LINE;
}

const MAX_LABEL = 24;
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function renderGraphSvg(graph: Graph, options: LayoutOptions = DEFAULT_LAYOUT): SafeHtml {
  if (graph.nodes.length === 0) return html`<p class="empty">Nothing runs yet: no hash to draw.</p>`;
  const layout: Layout = layoutGraph(graph.nodes, graph.edges, options);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const { nodeWidth: w, nodeHeight: h } = options;
  const edges = layout.edges.map(
    (e) =>
      html`<path class="edge" data-from="${e.from}" data-to="${e.to}" d="${e.d}" fill="none" stroke="#94a3b8" stroke-width="1.5" marker-end="url(#hashd-arrow)"/>`,
  );
  const nodes = layout.nodes.map((p) => {
    const n = byId.get(p.id) as GraphNode;
    const c = PALETTE[n.state];
    const dash = n.state === "unknown" || n.state === "retired" ? "4 3" : null;
    const rect = html`<title>${n.title}</title><rect x="${p.x}" y="${p.y}" width="${w}" height="${h}" rx="7" fill="${c.fill}" stroke="${c.stroke}" stroke-width="1.5"${dash ? html` stroke-dasharray="${dash}"` : ""}/><text x="${p.x + 10}" y="${p.y + 19}" fill="${c.text}" font-size="13" font-weight="600">${clip(n.label, MAX_LABEL)}</text>`;
    if (n.versions) {
      const shown = n.versions.slice(0, n.versions.length > MAX_LINES + 1 ? MAX_LINES : MAX_LINES + 1);
      const lines = shown.map((v, i) => {
        const vc = PALETTE[v.state];
        const y = p.y + 36 + i * LINE;
        const g = html`<g class="version" data-hash="${v.hash}" data-state="${v.state}"><circle cx="${p.x + 14}" cy="${y - 4}" r="4" fill="${vc.stroke}"/><text x="${p.x + 23}" y="${y}" fill="${c.text}" font-size="11" font-family="ui-monospace, monospace">${v.hash.slice(0, 12)}${v.tag ? ` ${clip(v.tag, 9)}` : ""}</text></g>`;
        return v.href ? html`<a href="${v.href}">${g}</a>` : g;
      });
      const more = n.versions.length - shown.length;
      const extra = more
        ? html`<text x="${p.x + 23}" y="${p.y + 36 + shown.length * LINE}" fill="${c.text}" font-size="11">+${more} more</text>`
        : "";
      return html`<g class="node service" data-service="${n.id}" data-state="${n.state}" data-layer="${p.layer}">${rect}${lines}${extra}</g>`;
    }
    const body = html`${rect}<text x="${p.x + 10}" y="${p.y + 36}" fill="${c.text}" font-size="11" font-family="ui-monospace, monospace">${n.id.slice(0, 12)} · ${n.state}</text>`;
    const g = html`<g class="node" data-hash="${n.id}" data-state="${n.state}" data-layer="${p.layer}">${body}</g>`;
    return n.href ? html`<a href="${n.href}">${g}</a>` : g;
  });
  return html`<svg class="graph" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="dependency graph: callers left, the hashes they call right" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}" font-family="system-ui, sans-serif"><defs><marker id="hashd-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#94a3b8"/></marker></defs>${edges}${nodes}</svg>`;
}
