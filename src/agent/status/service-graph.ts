/**
 * The graph the page draws: one node per service, its versions inside, edges where a version of
 * one calls a version of the other. Either the closure of one alias (what `prod` reaches: the
 * default) or every service with a version that is not folded away. A pure function.
 */
import { isStoreHash } from "../../model/names.ts";
import { type Graph, type GraphNode, type NodeState, nodeState } from "./graph-svg.ts";
import type { StatusSnapshot } from "./types.ts";
import { aliasTargets, closureOf, compareAliases, groupServices, short, UNNAMED } from "./view.ts";

/** "" = every service; otherwise an alias name. */
export function serviceGraph(s: StatusSnapshot, alias: string): Graph {
  const byHash = new Map(s.hashes.map((h) => [h.hash, h]));
  const refsOf = (h: string) => byHash.get(h)?.refs ?? [];
  const chosen = s.aliases.find((a) => a.name === alias);
  let shown: Set<string>;
  if (chosen) {
    shown = new Set(closureOf(aliasTargets(chosen), refsOf).keys());
  } else {
    const roots = groupServices(s)
      .flatMap((g) => g.versions)
      .filter((v) => !v.fold && v.state !== "retired")
      .map((v) => v.entry.hash);
    shown = new Set(closureOf(roots, refsOf).keys());
  }
  const tags = new Map<string, string[]>();
  for (const a of [...s.aliases].sort(compareAliases))
    for (const t of aliasTargets(a)) tags.set(t, [...(tags.get(t) ?? []), a.name]);
  const serviceOf = (h: string) => byHash.get(h)?.name ?? `${UNNAMED} ${short(h)}`;

  const nodes = new Map<string, GraphNode>();
  const order = groupServices(s).map((g) => g.name);
  const hashes = [...shown].sort((a, b) => {
    const ia = order.indexOf(byHash.get(a)?.name ?? UNNAMED);
    const ib = order.indexOf(byHash.get(b)?.name ?? UNNAMED);
    return ia - ib;
  });
  for (const h of hashes) {
    const e = byHash.get(h);
    const state: NodeState = e ? nodeState(e) : "unknown";
    const id = serviceOf(h);
    let node = nodes.get(id);
    if (!node) {
      node = { id, label: e?.name ?? UNNAMED, state, title: id, versions: [] };
      nodes.set(id, node);
    }
    const tag = (tags.get(h) ?? []).join(",");
    node.versions?.push({ hash: h, state, tag, ...(isStoreHash(h) ? { href: `/hashes/${h}` } : {}) });
  }
  for (const n of nodes.values()) {
    const vs = n.versions ?? [];
    // aliased versions first, then live ones; the node takes the colour of its first version
    vs.sort((a, b) => Number(b.tag !== "") - Number(a.tag !== "") || rankOf(a.state) - rankOf(b.state));
    n.state = vs[0]?.state ?? "unknown";
    const href = vs.find((v) => v.href)?.href;
    if (href) n.href = href;
    n.title = `${n.label}\n${vs.map((v) => `${short(v.hash)} ${v.state}${v.tag ? ` (${v.tag})` : ""}`).join("\n")}`;
  }
  const edges = new Map<string, { from: string; to: string }>();
  for (const h of shown) {
    for (const r of refsOf(h)) {
      if (!shown.has(r)) continue;
      const from = serviceOf(h);
      const to = serviceOf(r);
      if (from !== to) edges.set(`${from}\0${to}`, { from, to });
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

const RANK: readonly NodeState[] = [
  "failed",
  "ready",
  "activating",
  "fetching",
  "idle",
  "draining",
  "unknown",
  "retired",
];
const rankOf = (s: NodeState) => RANK.indexOf(s);
