/**
 * Layered layout of the dependency graph (a pure function, no DOM): a node's layer is the length
 * of the longest reference path that reaches it, so frontends (referenced by nothing) sit on the
 * left and every backend sits right of all its callers. Within a layer, nodes are ordered by the
 * barycentre of their neighbours (Sugiyama, Tagawa and Toda 1981, the crossing-reduction step),
 * swept down and up a few times; ties break on label then id, so the picture is deterministic.
 */

export interface GraphNodeInput {
  id: string;
  label: string;
}

/** `from` references (calls) `to`. */
export interface GraphEdgeInput {
  from: string;
  to: string;
}

export interface LayoutOptions {
  nodeWidth: number;
  nodeHeight: number;
  /** horizontal space between layers (where the edges run) */
  gapX: number;
  gapY: number;
  padding: number;
}

export const DEFAULT_LAYOUT: LayoutOptions = {
  nodeWidth: 190,
  nodeHeight: 46,
  gapX: 90,
  gapY: 18,
  padding: 12,
};

export interface PlacedNode {
  id: string;
  layer: number;
  x: number;
  y: number;
}

export interface PlacedEdge {
  from: string;
  to: string;
  /** SVG path data: a cubic curve from the caller's right side to the callee's left side */
  d: string;
}

export interface Layout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

const SWEEPS = 4;
/** the height a long edge takes where it crosses a layer */
const VIRTUAL_HEIGHT = 8;

export function layoutGraph(
  nodesIn: readonly GraphNodeInput[],
  edgesIn: readonly GraphEdgeInput[],
  options: LayoutOptions = DEFAULT_LAYOUT,
): Layout {
  const byId = new Map(nodesIn.map((n) => [n.id, n]));
  const seen = new Set<string>();
  const edges = edgesIn.filter((e) => {
    const key = `${e.from}\0${e.to}`;
    if (e.from === e.to || !byId.has(e.from) || !byId.has(e.to) || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const callers = adjacency(byId.keys(), edges, "to", "from");
  const layerOf = longestPathLayers([...byId.keys()], callers);
  const layerCount = Math.max(0, ...layerOf.values()) + (byId.size ? 1 : 0);

  // An edge that spans layers passes through one virtual node per layer it crosses (Sugiyama's
  // dummy nodes), so it is ordered with the real nodes and routed around them, not through them.
  const virtual = new Set<string>();
  const hops = new Map<GraphEdgeInput, string[]>();
  const links: GraphEdgeInput[] = [];
  for (const e of edges) {
    const path = [e.from];
    const [a, b] = [layerOf.get(e.from) ?? 0, layerOf.get(e.to) ?? 0];
    for (let l = a + 1; l < b; l++) {
      const id = `\0${e.from}>${e.to}@${l}`;
      virtual.add(id);
      layerOf.set(id, l);
      path.push(id);
    }
    path.push(e.to);
    hops.set(e, path);
    for (let i = 1; i < path.length; i++) links.push({ from: path[i - 1] as string, to: path[i] as string });
  }
  const all = [...byId.keys(), ...virtual];
  const up = adjacency(all, links, "to", "from");
  const down = adjacency(all, links, "from", "to");

  const layers: string[][] = Array.from({ length: layerCount }, () => []);
  const byLabel = (a: string, b: string) => {
    const la = byId.get(a)?.label ?? "";
    const lb = byId.get(b)?.label ?? "";
    return la < lb ? -1 : la > lb ? 1 : a < b ? -1 : a > b ? 1 : 0;
  };
  for (const id of all.sort(byLabel)) layers[layerOf.get(id) ?? 0]?.push(id);

  // Crossing reduction: position = index / size of its layer, so layers of different sizes compare.
  const pos = new Map<string, number>();
  const place = (layer: string[]) => {
    layer.forEach((id, i) => {
      pos.set(id, (i + 0.5) / layer.length);
    });
  };
  for (const layer of layers) place(layer);
  const reorder = (layer: string[], neighbours: Map<string, string[]>) => {
    const key = new Map<string, number>();
    for (const id of layer) {
      const ns = neighbours.get(id) ?? [];
      key.set(id, ns.length ? ns.reduce((s, n) => s + (pos.get(n) ?? 0), 0) / ns.length : (pos.get(id) ?? 0));
    }
    layer.sort((a, b) => (key.get(a) as number) - (key.get(b) as number) || byLabel(a, b));
    place(layer);
  };
  for (let s = 0; s < SWEEPS; s++) {
    for (let i = 1; i < layers.length; i++) reorder(layers[i] as string[], up);
    for (let i = layers.length - 2; i >= 0; i--) reorder(layers[i] as string[], down);
  }

  const { nodeWidth: w, nodeHeight: h, gapX, gapY, padding } = options;
  const heightOf = (id: string) => (virtual.has(id) ? VIRTUAL_HEIGHT : h);
  const spanOf = (layer: string[]) =>
    layer.reduce((s, id) => s + heightOf(id), 0) + (layer.length - 1) * gapY;
  const tallest = Math.max(h, ...layers.map(spanOf));
  const height = padding * 2 + tallest;
  const width = padding * 2 + Math.max(w, layerCount * w + (layerCount - 1) * gapX);
  const placed = new Map<string, PlacedNode>();
  layers.forEach((layer, li) => {
    let y = padding + (tallest - spanOf(layer)) / 2;
    for (const id of layer) {
      placed.set(id, { id, layer: li, x: padding + li * (w + gapX), y });
      y += heightOf(id) + gapY;
    }
  });
  const centre = (id: string) => (placed.get(id)?.y ?? 0) + heightOf(id) / 2;

  // Each edge gets its own port on both sides, ordered by where its next hop lies, so edges into
  // a shared backend fan in instead of meeting in one point.
  const ports = (end: "first" | "last") => {
    const out = new Map<GraphEdgeInput, number>();
    const groups = new Map<string, GraphEdgeInput[]>();
    const node = (e: GraphEdgeInput) => (end === "first" ? e.from : e.to);
    const next = (e: GraphEdgeInput) => {
      const p = hops.get(e) as string[];
      return end === "first" ? (p[1] as string) : (p[p.length - 2] as string);
    };
    for (const e of edges) groups.set(node(e), [...(groups.get(node(e)) ?? []), e]);
    for (const [id, group] of groups) {
      group.sort((a, b) => centre(next(a)) - centre(next(b)));
      const step = Math.min(8, (h * 0.6) / group.length);
      group.forEach((e, i) => {
        out.set(e, centre(id) + (i - (group.length - 1) / 2) * step);
      });
    }
    return out;
  };
  const outPort = ports("first");
  const inPort = ports("last");
  const placedEdges = edges.map((e): PlacedEdge => {
    const path = hops.get(e) as string[];
    const a = placed.get(e.from) as PlacedNode;
    const b = placed.get(e.to) as PlacedNode;
    // Points: leave the caller's right side, cross each virtual layer straight, enter the callee's left side.
    const pts: [number, number][] = [[a.x + w, outPort.get(e) as number]];
    for (const id of path.slice(1, -1)) {
      const v = placed.get(id) as PlacedNode;
      pts.push([v.x, centre(id)], [v.x + w, centre(id)]);
    }
    pts.push([b.x, inPort.get(e) as number]);
    let d = `M${r(pts[0]?.[0] ?? 0)} ${r(pts[0]?.[1] ?? 0)}`;
    for (let i = 1; i < pts.length; i++) {
      const [x1, y1] = pts[i - 1] as [number, number];
      const [x2, y2] = pts[i] as [number, number];
      if (i % 2 === 0) {
        d += ` L${r(x2)} ${r(y2)}`; // through a virtual node: a straight run
        continue;
      }
      // Backward edges (only in a cycle, which Nix references can't form) bend out of the way.
      const bend = Math.max(40, Math.abs(x2 - x1) / 2);
      d += ` C${r(x1 + bend)} ${r(y1)} ${r(x2 - bend)} ${r(y2)} ${r(x2)} ${r(y2)}`;
    }
    return { from: e.from, to: e.to, d };
  });

  const nodes = layers.flat().filter((id) => !virtual.has(id));
  return { width, height, nodes: nodes.map((id) => placed.get(id) as PlacedNode), edges: placedEdges };
}

function adjacency(
  ids: Iterable<string>,
  edges: readonly GraphEdgeInput[],
  key: "from" | "to",
  value: "from" | "to",
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const id of ids) out.set(id, []);
  for (const e of edges) out.get(e[key])?.push(e[value]);
  return out;
}

/**
 * layer(n) = 0 for a node nothing references, else 1 + max(layer(caller)). Iterative DFS with an
 * on-stack set: an edge that closes a cycle (untrusted gossip could claim one) is ignored.
 */
function longestPathLayers(ids: readonly string[], callers: Map<string, string[]>): Map<string, number> {
  const layer = new Map<string, number>();
  const onStack = new Set<string>();
  for (const root of ids) {
    if (layer.has(root)) continue;
    const stack: { id: string; next: number; best: number }[] = [{ id: root, next: 0, best: 0 }];
    onStack.add(root);
    while (stack.length) {
      const top = stack[stack.length - 1] as { id: string; next: number; best: number };
      const parents = callers.get(top.id) ?? [];
      if (top.next < parents.length) {
        const p = parents[top.next++] as string;
        const known = layer.get(p);
        if (known !== undefined) top.best = Math.max(top.best, known + 1);
        else if (!onStack.has(p)) {
          onStack.add(p);
          stack.push({ id: p, next: 0, best: 0 });
        }
        continue;
      }
      stack.pop();
      onStack.delete(top.id);
      layer.set(top.id, top.best);
      const below = stack[stack.length - 1];
      if (below) below.best = Math.max(below.best, top.best + 1);
    }
  }
  return layer;
}

const r = (n: number) => Math.round(n * 10) / 10;
