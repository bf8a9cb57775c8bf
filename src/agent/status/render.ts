/**
 * The page, rendered on the server from a StatusSnapshot, as keyed blocks: each container of the
 * page (the incident strip, the service list, the graph, the alias, member and event tables)
 * holds blocks with a `data-key` (a service, an alias, a member, an event). The first render puts
 * them in the page; the live stream (live.ts) sends only the blocks that changed, and the numbers
 * that move under traffic (in flight, holds, last contact) travel apart as `data-load` values, so
 * they never re-render anything.
 */
import { isStoreHash } from "../../model/names.ts";
import { PALETTE, renderGraphSvg, SERVICE_LAYOUT, serviceNodeHeight } from "./graph-svg.ts";
import { html, raw, type SafeHtml } from "./html.ts";
import { PAGE_CSS, PAGE_JS } from "./page-assets.ts";
import { serviceGraph } from "./service-graph.ts";
import type { StatusAlias, StatusEvent, StatusHash, StatusSnapshot } from "./types.ts";
import {
  aliasTargets,
  deployTime,
  groupServices,
  incidents,
  isPreview,
  reasonParts,
  type ServiceView,
  short,
  UNNAMED,
  type VersionView,
} from "./view.ts";

export interface RenderOptions {
  /** the alias whose closure the graph draws; "" = every service; default prod (if it exists) */
  graph?: string;
  /** the filter box's text (the page's `?q=`) */
  q?: string;
}

export interface Block {
  key: string;
  html: string;
}

/** container id → its blocks, in order */
export type Blocks = Record<string, Block[]>;

export const CONTAINERS = [
  "incident-box",
  "svc-list",
  "graph-box",
  "alias-rows",
  "preview-rows",
  "member-rows",
  "event-rows",
] as const;

/** The graph's alias when none is asked for: prod if there is one, else every service. */
export function defaultGraph(s: StatusSnapshot, asked?: string): string {
  if (asked !== undefined && (asked === "" || s.aliases.some((a) => a.name === asked))) return asked;
  return s.aliases.some((a) => a.name === "prod") ? "prod" : "";
}

export function renderBlocks(s: StatusSnapshot, o: RenderOptions = {}): Blocks {
  const ctx = context(s);
  const aliases = s.aliases.filter((a) => a.hash !== null || a.split?.length);
  return {
    "incident-box": [{ key: "strip", html: strip(ctx).value }],
    "svc-list": groupServices(s).map((g) => ({ key: `svc:${g.name}`, html: serviceBlock(ctx, g).value })),
    "graph-box": [{ key: "graph", html: graphBlock(s, defaultGraph(s, o.graph)).value }],
    "alias-rows": aliases.filter((a) => !isPreview(a.name)).map((a) => aliasRow(ctx, a)),
    "preview-rows": aliases.filter((a) => isPreview(a.name)).map((a) => aliasRow(ctx, a)),
    "member-rows": s.members.map((m) => ({
      key: `member:${m.name}`,
      html: html`<tr data-key="member:${m.name}" data-member="${m.name}" data-health="${m.state}" data-search="${`${m.name} ${m.state}`.toLowerCase()}"><td>${m.name}${m.self ? html` <span class="muted">(this host)</span>` : ""}</td>
<td><code>${m.address || "—"}</code></td><td>${badge(m.state, "h")}</td><td class="num">${m.incarnation}</td>
<td class="time">${m.self ? "—" : load(`age:${m.name}`, m.lastContact ? `${coarseAge(s.generatedAt - m.lastContact)} ago` : "never")}</td><td class="num">${ctx.reported.get(m.name) ?? 0}</td></tr>`
        .value,
    })),
    "event-rows": eventRows(ctx, s.events),
  };
}

export function renderPage(s: StatusSnapshot, o: RenderOptions = {}): string {
  const b = renderBlocks(s, o);
  const fill = (id: string) => raw((b[id] ?? []).map((x) => x.html).join("\n"));
  const title = `hashd · ${s.self}`;
  const previews = b["preview-rows"]?.length ?? 0;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><noscript><meta http-equiv="refresh" content="10"></noscript>
<style>${raw(PAGE_CSS)}</style></head>
<body><header class="top"><h1>hashd <span>${s.self}</span></h1><p class="meta">zone <b>${s.zone || "(none)"}</b><span id="live" class="live off">static</span></p>
<nav><a href="#incidents">Incidents</a><a href="#services">Services</a><a href="#graph">Graph</a><a href="#aliases">Aliases</a><a href="#members">Members</a><a href="#events">Events</a>
<input id="filter" type="search" placeholder="filter: service, hash, alias" aria-label="filter" value="${o.q ?? ""}" autocomplete="off"></nav></header>
<main id="status">
<section id="incidents"><div id="incident-box">${fill("incident-box")}</div></section>
<section id="services"><h2>Services <span class="muted">grouped, aliased versions first; retired and preview versions folded</span></h2><div id="svc-list">${fill("svc-list")}</div></section>
<section id="graph"><h2>Graph <span class="muted">one node per service, callers left</span></h2><div id="graph-box">${fill("graph-box")}</div></section>
<div class="cols"><section id="aliases"><h2>Aliases</h2><div class="scroll"><table><thead><tr><th>Alias</th><th>Points at</th><th>Rollout</th><th>History (newest first)</th></tr></thead><tbody id="alias-rows">${fill("alias-rows")}</tbody></table></div>
<details class="fold" data-key="fold:previews"${previews ? "" : raw(" hidden")}><summary>Preview aliases (${previews})</summary><div class="scroll"><table><tbody id="preview-rows">${fill("preview-rows")}</tbody></table></div></details></section>
<section id="members"><h2>Members</h2><div class="scroll"><table><thead><tr><th>Member</th><th>Address</th><th>Health</th><th class="num">Inc.</th><th>Last contact</th><th class="num">Hashes</th></tr></thead><tbody id="member-rows">${fill("member-rows")}</tbody></table></div></section></div>
<section id="events"><h2>Recent events</h2><div class="scroll"><table><thead><tr><th>Time (UTC)</th><th>Hash</th><th>Kind</th><th>Reason</th></tr></thead><tbody id="event-rows">${fill("event-rows")}</tbody></table></div></section>
</main>
<script>${raw(PAGE_JS)}</script></body></html>`.value;
}

export interface Ctx {
  s: StatusSnapshot;
  byHash: Map<string, StatusHash>;
  /** member → number of hashes it reports */
  reported: Map<string, number>;
}

export function context(s: StatusSnapshot): Ctx {
  const reported = new Map<string, number>();
  for (const h of s.hashes)
    for (const x of h.hosts) reported.set(x.member, (reported.get(x.member) ?? 0) + 1);
  return { s, byHash: new Map(s.hashes.map((h) => [h.hash, h])), reported };
}

/** A number that moves under traffic: sent apart from the blocks and patched in place (live.ts). */
export const load = (key: string, value: string | number): SafeHtml =>
  html`<span data-load="${key}">${value}</span>`;

/** A coloured label; a state outside the palette (an event kind like "alias") is drawn as unknown. */
export function badge(state: string, prefix: "s" | "h" = "s"): SafeHtml {
  const known =
    prefix === "h" ? ["alive", "suspect", "dead", "left"].includes(state) : Object.hasOwn(PALETTE, state);
  return html`<span class="badge ${prefix}-${known ? state : "unknown"}">${state}</span>`;
}

/** `service short-hash`, linked to the hash's page. */
export function hashRef(ctx: Ctx, hash: string, name?: string | null): SafeHtml {
  const n = name !== undefined ? name : (ctx.byHash.get(hash)?.name ?? null);
  const text = html`${n ? html`<span class="svc-name">${n}</span> ` : ""}<code class="hash" title="${hash}">${short(hash)}</code>`;
  return isStoreHash(hash) ? html`<a class="ref" href="/hashes/${hash}">${text}</a>` : text;
}

/** A reason with every hash in it shown as `service short-hash`, linked. */
export function reason(ctx: Ctx, text: string): SafeHtml {
  return html`${reasonParts(text, (h) => ctx.byHash.get(h)?.name ?? null).map((p) =>
    typeof p === "string" ? p : hashRef(ctx, p.hash, p.name),
  )}`;
}

export function aliasTag(name: string, reached = false): SafeHtml {
  const kind =
    name === "prod" ? "prod" : name === "staging" ? "staging" : isPreview(name) ? "preview" : "other";
  return html`<span class="tag t-${kind}${reached ? " reached" : ""}"${reached ? html` title="${name} reaches it through references"` : ""}>${reached ? "↳" : ""}${name}</span>`;
}

function strip(ctx: Ctx): SafeHtml {
  const { s } = ctx;
  const inc = incidents(s);
  const alive = s.members.filter((m) => m.state === "alive").length;
  const running = s.hashes.filter((h) =>
    h.hosts.some((x) => !x.stale && ["ready", "idle", "activating"].includes(x.state)),
  ).length;
  const lines: SafeHtml[] = [];
  if (inc.down.length)
    lines.push(
      html`<li class="bad"><b>Down</b> ${inc.down.map((m, i) => html`${i ? ", " : ""}<a href="#members">${m.name}</a> ${badge(m.state, "h")}`)}</li>`,
    );
  for (const f of inc.failed)
    lines.push(
      html`<li class="bad"><b>Failed</b> ${hashRef(ctx, f.hash, f.name)}: ${reason(ctx, f.line)}</li>`,
    );
  for (const d of inc.draining)
    lines.push(
      html`<li class="warn"><b>Draining</b> ${hashRef(ctx, d.hash, d.name)}${d.why ? html`: ${reason(ctx, d.why)}` : ""}</li>`,
    );
  const main = s.aliases
    .filter((a) => !isPreview(a.name) && (a.hash !== null || a.split?.length))
    .slice(0, 3);
  const aliasLines = main.map(
    (a) =>
      html`<li>${aliasTag(a.name)} → ${targets(ctx, a)}${a.rollout ? html` · ${rolloutLine(a)}` : ""}</li>`,
  );
  return html`<div class="strip" data-key="strip"><p class="summary" id="summary"><b>${alive}</b> of ${s.members.length} members alive · <b>${running}</b> hashes running · <b>${inc.draining.length}</b> draining · <b>${inc.failed.length}</b> failed</p>
${lines.length ? html`<ul class="incidents">${lines}</ul>` : html`<p class="ok">No incident: every member alive, nothing failed or draining.</p>`}
${aliasLines.length ? html`<ul class="mainaliases">${aliasLines}</ul>` : ""}</div>`;
}

function targets(ctx: Ctx, a: StatusAlias): SafeHtml {
  if (a.split?.length)
    return html`${a.split.map((t, i) => html`${i ? " · " : ""}${hashRef(ctx, t.hash)} <b class="weight">${t.weight}%</b>`)}`;
  return a.hash === null ? html`<span class="muted">removed</span>` : hashRef(ctx, a.hash);
}

function rolloutLine(a: StatusAlias): SafeHtml {
  const r = a.rollout;
  if (!r) return html``;
  const steps = r.steps.map(
    (w, i) => html`<span class="step${i < r.step ? " done" : i === r.step ? " now" : ""}">${w}%</span>`,
  );
  return html`<span class="rollout">${r.kind} <span class="badge r-${r.status}">${r.status}</span> ${short(r.from)} → ${short(r.to)} <span class="steps">${steps}</span>${r.note ? html` <span class="note">${r.note}</span>` : ""}</span>`;
}

function aliasRow(ctx: Ctx, a: StatusAlias): Block {
  const { s } = ctx;
  const history = a.history
    .slice(0, 3)
    .map(
      (c) =>
        html`<li>${c.hash === null ? html`<span class="muted">removed</span>` : hashRef(ctx, c.hash)} · ${clock(c.at, s.generatedAt)} · by ${c.by}</li>`,
    );
  const more = a.history.length - 3;
  const search = [a.name, ...aliasTargets(a), ...aliasTargets(a).map((h) => ctx.byHash.get(h)?.name ?? "")]
    .join(" ")
    .toLowerCase();
  return {
    key: `alias:${a.name}`,
    html: html`<tr data-key="alias:${a.name}" data-alias="${a.name}" data-search="${search}"><td>${aliasTag(a.name)}${s.zone ? html`<span class="muted">.${s.zone}</span>` : ""}</td><td class="targets">${targets(ctx, a)}</td>
<td>${a.rollout ? rolloutLine(a) : html`<span class="muted">—</span>`}</td><td><ul class="history">${history}${more > 0 ? html`<li class="muted">+${more} older</li>` : ""}</ul></td></tr>`
      .value,
  };
}

function serviceBlock(ctx: Ctx, g: ServiceView): SafeHtml {
  const shown = g.versions.filter((v) => !v.fold);
  const folded = g.versions.filter((v) => v.fold);
  const search = [
    g.name,
    ...g.aliases,
    ...g.versions.map((v) => `${v.entry.hash} ${v.state} ${v.aliases.join(" ")}`),
  ]
    .join(" ")
    .toLowerCase();
  const retired = folded.filter((v) => v.fold === "retired").length;
  const preview = folded.length - retired;
  const foldLabel = [preview ? `${preview} preview` : "", retired ? `${retired} retired` : ""]
    .filter(Boolean)
    .join(", ");
  const head = html`<tr><th>Version</th><th>State</th><th>Hosts (in flight/holds)</th><th class="num">In flight</th><th>Deployed</th><th>Why</th></tr>`;
  const table = (vs: VersionView[]) =>
    html`<div class="scroll"><table class="versions"><thead>${head}</thead><tbody>${vs.map((v) => versionRow(ctx, v))}</tbody></table></div>`;
  const id = `svc-${g.name.replace(/[^a-z0-9-]/gi, "_")}`;
  return html`<article class="svc rank-${g.rank}" id="${id}" data-key="svc:${g.name}" data-service="${g.name}" data-search="${search}">
<h3>${g.name === UNNAMED ? html`<span class="muted">${g.name}</span>` : g.name} <span class="tags">${g.aliases.map((a) => aliasTag(a))}</span>${g.calls.length ? html` <span class="calls muted">calls ${g.calls.join(", ")}</span>` : ""}</h3>
${shown.length ? table(shown) : ""}${folded.length ? html`<details class="fold" data-key="fold:${g.name}"><summary>${foldLabel} version${folded.length === 1 ? "" : "s"}</summary>${table(folded)}</details>` : ""}</article>`;
}

function versionRow(ctx: Ctx, v: VersionView): SafeHtml {
  const h = v.entry;
  const reached = v.reachedBy.filter((a) => !v.aliases.includes(a)).slice(0, 3);
  const hosts = h.hosts.length
    ? h.hosts.map((x) =>
        x.stale
          ? html`<span class="host stale" title="last known report of ${x.member}, which is down">${x.member} ${badge(x.state)} <i>last known</i></span>`
          : html`<span class="host">${x.member} ${badge(x.state)} ${load(`h:${h.hash}@${x.member}`, `${x.inFlight}/${x.holds}`)}</span>`,
      )
    : html`<span class="muted">none</span>`;
  const here = h.state === null ? html` <span class="muted">(not here)</span>` : "";
  return html`<tr data-hash="${h.hash}" data-state="${v.state}"${v.state === "retired" ? raw(' class="retired"') : ""}>
<td class="fit">${hashRef(ctx, h.hash, null)} ${v.aliases.map((a) => aliasTag(a))}${reached.map((a) => aliasTag(a, true))}</td>
<td class="fit">${badge(v.state)}${here}</td>
<td><div class="hosts">${hosts}</div></td><td class="num">${load(`f:${h.hash}`, h.inFlight)}</td>
<td class="time">${h.deployedAt ? html`<time datetime="${iso(h.deployedAt)}">${clock(h.deployedAt, ctx.s.generatedAt)}</time>` : html`<span class="muted">—</span>`}</td>
<td class="why">${why(ctx, h)}</td></tr>`;
}

function why(ctx: Ctx, h: StatusHash): SafeHtml {
  const verdict = h.verdict ? html`<div>${reason(ctx, h.verdict)}</div>` : "";
  if (!h.error) return html`${verdict}`;
  const [first, ...rest] = h.error.split("\n");
  const error = rest.length
    ? html`<details class="err" data-key="err:${h.hash}"><summary>${first}</summary><pre>${rest.join("\n")}</pre></details>`
    : html`<div>${first}</div>`;
  return html`${verdict}${error}`;
}

function graphBlock(s: StatusSnapshot, chosen: string): SafeHtml {
  const graph = serviceGraph(s, chosen);
  const options = [
    html`<option value=""${chosen === "" ? raw(" selected") : ""}>every service</option>`,
    ...s.aliases
      .filter((a) => a.hash !== null || a.split?.length)
      .map(
        (a) =>
          html`<option value="${a.name}"${a.name === chosen ? raw(" selected") : ""}>closure of ${a.name}</option>`,
      ),
  ];
  const layout = { ...SERVICE_LAYOUT, nodeHeight: serviceNodeHeight(graph) };
  return html`<div data-key="graph" data-graph="${chosen}"><p class="graph-of"><label>Show <select id="graph-of" aria-label="graph of">${options}</select></label> <span class="muted">${graph.nodes.length} services, ${graph.edges.length} calls</span></p>
<div class="graph-wrap" data-keep-scroll="graph">${renderGraphSvg(graph, layout)}</div></div>`;
}

function eventRows(ctx: Ctx, events: readonly StatusEvent[]): Block[] {
  const seen = new Map<string, number>();
  return events.map((e) => {
    const base = `ev:${e.at}:${e.hash}:${e.kind}`;
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    const key = n ? `${base}:${n}` : base;
    const name = ctx.byHash.get(e.hash)?.name ?? "";
    return {
      key,
      html: html`<tr data-key="${key}" data-hash="${e.hash}" data-kind="${e.kind}" data-search="${`${name} ${e.hash} ${e.kind} ${e.message}`.toLowerCase()}"><td class="time fit"><time datetime="${iso(e.at)}">${clock(e.at, ctx.s.generatedAt)}</time></td>
<td class="fit">${hashRef(ctx, e.hash)}</td><td class="fit">${badge(e.kind)}</td><td class="msg">${reason(ctx, e.message)}</td></tr>`
        .value,
    };
  });
}

/** ISO time, or "" for a time no Date can hold (a provider's bug must not break the page). */
export const iso = (at: number) =>
  Number.isFinite(at) && Math.abs(at) <= 8.64e15 ? new Date(at).toISOString() : "";

/** "12:00:01" on the snapshot's (UTC) day, else "2025-01-31 12:00". */
export function clock(at: number, now: number): string {
  const t = iso(at);
  if (t === "") return "?";
  return t.slice(0, 10) === iso(now).slice(0, 10) ? t.slice(11, 19) : `${t.slice(0, 10)} ${t.slice(11, 16)}`;
}

export function age(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** An age that changes rarely: the last contact of a live member stays "< 5 s" between probes. */
export function coarseAge(ms: number): string {
  if (ms < 5000) return "< 5 s";
  if (ms < 60_000) return `${Math.floor(ms / 10_000) * 10 || 5} s`;
  return age(ms);
}

export { deployTime };
