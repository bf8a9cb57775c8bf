import { describe, expect, test } from "bun:test";
import { DEFAULT_LAYOUT, layoutGraph } from "./graph-layout.ts";

const n = (...ids: string[]) => ids.map((id) => ({ id, label: id }));
const e = (...pairs: string[]) =>
  pairs.map((p) => {
    const [from = "", to = ""] = p.split(">");
    return { from, to };
  });
const layers = (l: ReturnType<typeof layoutGraph>) => Object.fromEntries(l.nodes.map((x) => [x.id, x.layer]));

describe("layoutGraph", () => {
  test("layer = longest reference path: frontends left, every backend right of all its callers", () => {
    // web -> api -> db, and web -> db directly: db must still sit right of api.
    const l = layoutGraph(n("db", "api", "web", "cron"), e("web>api", "api>db", "web>db", "cron>db"));
    expect(layers(l)).toEqual({ web: 0, cron: 0, api: 1, db: 2 });
    const x = Object.fromEntries(l.nodes.map((p) => [p.id, p.x]));
    expect(x.web).toBeLessThan(x.api as number);
    expect(x.api).toBeLessThan(x.db as number);
  });

  test("a node alone, and an empty graph", () => {
    expect(layers(layoutGraph(n("solo"), []))).toEqual({ solo: 0 });
    const empty = layoutGraph([], []);
    expect(empty.nodes).toEqual([]);
    expect(empty.width).toBeGreaterThan(0);
  });

  test("nodes never overlap and stay inside the canvas", () => {
    const ids = Array.from({ length: 12 }, (_, i) => `n${i}`);
    const edges = ids.slice(1).map((id, i) => ({ from: ids[Math.floor(i / 3)] as string, to: id }));
    const l = layoutGraph(n(...ids), edges);
    const { nodeWidth: w, nodeHeight: h } = DEFAULT_LAYOUT;
    for (const a of l.nodes) {
      expect(a.x).toBeGreaterThanOrEqual(0);
      expect(a.y).toBeGreaterThanOrEqual(0);
      expect(a.x + w).toBeLessThanOrEqual(l.width);
      expect(a.y + h).toBeLessThanOrEqual(l.height);
      for (const b of l.nodes) {
        if (a === b) continue;
        const apart = a.x + w <= b.x || b.x + w <= a.x || a.y + h <= b.y || b.y + h <= a.y;
        expect(apart).toBe(true);
      }
    }
  });

  test("edges run from the caller's right side to the callee's left side", () => {
    const l = layoutGraph(n("a", "b"), e("a>b"));
    const [a, b] = [l.nodes.find((x) => x.id === "a"), l.nodes.find((x) => x.id === "b")];
    const edge = l.edges[0];
    expect(edge?.d.startsWith(`M${(a?.x ?? 0) + DEFAULT_LAYOUT.nodeWidth} `)).toBe(true);
    expect(edge?.d.split(" ").at(-2)).toBe(String(b?.x));
  });

  test("an edge that spans layers is routed around the nodes in between, not through them", () => {
    // worker -> db skips the api layer; api sorts first, so a straight line would cross it.
    const l = layoutGraph(n("api", "db", "web", "worker"), e("web>api", "api>db", "worker>db"));
    const long = l.edges.find((x) => x.from === "worker");
    const run = long?.d.match(/L([\d.]+) ([\d.]+)/);
    expect(run).not.toBeNull();
    const y = Number(run?.[2]);
    const api = l.nodes.find((x) => x.id === "api");
    expect(api?.layer).toBe(1);
    const inside = (api?.y ?? 0) <= y && y <= (api?.y ?? 0) + DEFAULT_LAYOUT.nodeHeight;
    expect(inside).toBe(false);
    expect(l.nodes.map((x) => x.id).sort()).toEqual(["api", "db", "web", "worker"]); // no virtual node leaks out
  });

  test("self, duplicate and dangling edges are dropped; a cycle (bad gossip) terminates", () => {
    const l = layoutGraph(n("a", "b", "c"), e("a>a", "a>b", "a>b", "a>zzz", "b>c", "c>a"));
    expect(l.edges.map((x) => `${x.from}>${x.to}`)).toEqual(["a>b", "b>c", "c>a"]);
    expect(new Set(Object.values(layers(l))).size).toBeGreaterThan(1);
  });

  test("crossing reduction puts callees next to their callers", () => {
    // Sorted by label, layer 1 would be [x, y] while their callers are ordered [b, a].
    const l = layoutGraph(n("b", "a", "y", "x"), e("a>y", "b>x"));
    const y = Object.fromEntries(l.nodes.map((p) => [p.id, p.y]));
    expect(Math.sign((y.a as number) - (y.b as number))).toBe(Math.sign((y.y as number) - (y.x as number)));
  });

  test("deterministic whatever the input order", () => {
    const nodes = n("web", "api", "db", "w2", "a2");
    const edges = e("web>api", "api>db", "w2>a2", "a2>db");
    const one = layoutGraph(nodes, edges);
    const two = layoutGraph([...nodes].reverse(), [...edges].reverse());
    const key = (l: typeof one) => JSON.stringify(l.nodes.map((p) => [p.id, p.x, p.y]).sort());
    expect(key(one)).toBe(key(two));
  });

  test("a wide chain of many services lays out quickly", () => {
    const ids = Array.from({ length: 400 }, (_, i) => `s${i}`);
    const edges = ids.slice(20).map((id, i) => ({ from: ids[i] as string, to: id }));
    const t = performance.now();
    const l = layoutGraph(n(...ids), edges);
    expect(performance.now() - t).toBeLessThan(500);
    expect(Math.max(...l.nodes.map((p) => p.layer))).toBe(19);
  });
});
