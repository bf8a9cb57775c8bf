/**
 * The page, rendered on the server from a StatusSnapshot. `renderSections` is also what the SSE
 * stream pushes, so the first render and every live update are the same function.
 */
import { isStoreHash } from "../../model/names.ts";
import { graphOf, type NodeState, nodeState, PALETTE, renderGraphSvg } from "./graph-svg.ts";
import { html, raw, type SafeHtml, safeHref } from "./html.ts";
import { PAGE_CSS, PAGE_JS } from "./page-assets.ts";
import type { StatusAlias, StatusHash, StatusSnapshot } from "./types.ts";

export function renderPage(s: StatusSnapshot): string {
  const title = `hashd · ${s.self}`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><noscript><meta http-equiv="refresh" content="10"></noscript>
<style>${raw(PAGE_CSS)}</style></head>
<body><header><h1>hashd <span>${s.self}</span></h1><p class="meta">zone <b>${s.zone || "(none)"}</b><span id="live" class="live off">static</span></p></header>
<main id="status">${renderSections(s)}</main>
<script>${raw(PAGE_JS)}</script></body></html>`.value;
}

export function renderSections(s: StatusSnapshot): SafeHtml {
  return html`${summary(s)}
<section id="graph"><h2>Dependency graph</h2>${legend()}<div class="graph-wrap">${renderGraphSvg(graphOf(s.hashes))}</div></section>
<section id="hashes"><h2>Hashes</h2>${hashesTable(s)}</section>
<div class="cols"><section id="members"><h2>Members</h2>${membersTable(s)}</section>
<section id="aliases"><h2>Aliases</h2>${aliasesTable(s)}</section></div>
<section id="events"><h2>Recent events</h2>${eventsTable(s)}</section>`;
}

function summary(s: StatusSnapshot): SafeHtml {
  const alive = s.members.filter((m) => m.state === "alive").length;
  const running = s.hashes.filter((h) => ["ready", "idle", "activating"].includes(nodeState(h))).length;
  const failed = s.hashes.filter((h) => nodeState(h) === "failed").length;
  const draining = s.hashes.filter((h) => nodeState(h) === "draining").length;
  return html`<p class="summary" id="summary"><b>${alive}</b> of ${s.members.length} member(s) alive · <b>${running}</b> hash(es) running · <b>${draining}</b> draining · <b>${failed}</b> failed · as of <time datetime="${iso(s.generatedAt)}">${clock(s.generatedAt, s.generatedAt)} UTC</time></p>`;
}

function legend(): SafeHtml {
  const states = Object.keys(PALETTE) as NodeState[];
  return html`<div class="legend">${states.map((st) => badge(st))}</div>`;
}

/** A coloured label; a state outside the palette (an event kind like "alias") is drawn as unknown. */
function badge(state: string, prefix: "s" | "h" = "s"): SafeHtml {
  const known =
    prefix === "h" ? ["alive", "suspect", "dead", "left"].includes(state) : Object.hasOwn(PALETTE, state);
  return html`<span class="badge ${prefix}-${known ? state : "unknown"}">${state}</span>`;
}

function hashLink(hash: string, url: string | undefined, length = 12): SafeHtml {
  const text = html`<code class="hash" title="${hash}">${hash.slice(0, length)}</code>`;
  const href = isStoreHash(hash) ? safeHref(url) : undefined;
  return href ? html`<a href="${href}">${text}</a>` : text;
}

function hashesTable(s: StatusSnapshot): SafeHtml {
  if (s.hashes.length === 0) return html`<p class="empty">No hashes on this host or its members.</p>`;
  const rows = s.hashes.map(
    (
      h,
    ) => html`<tr data-hash="${h.hash}" data-state="${h.state ?? "absent"}"${nodeState(h) === "retired" ? raw(' class="retired"') : ""}>
<td>${h.name ?? html`<span class="muted">?</span>`}</td><td>${hashLink(h.hash, h.url)}</td>
<td>${h.state ? badge(h.state) : html`<span class="muted">not here</span>`}</td>
<td>${readiness(h)}</td><td class="num">${h.inFlight}</td><td class="num">${h.holds}</td>
<td><div class="hosts">${h.hosts.length ? h.hosts.map((x) => html`<span class="host">${x.member} ${badge(x.state)} ${x.inFlight}/${x.holds}</span>`) : html`<span class="muted">none</span>`}</div></td>
<td>${h.refs.length ? h.refs.map((r) => html`<div class="calls">${nameOf(s, r)} ${hashLink(r, urlOf(s, r), 8)}</div>`) : html`<span class="muted">—</span>`}</td>
<td class="why">${why(h)}</td></tr>`,
  );
  return html`<table><thead><tr><th>Service</th><th>Hash</th><th>Here</th><th>Readiness</th><th class="num">In flight</th><th class="num">Holds</th><th>Hosts (in flight/holds)</th><th>Calls</th><th>Why</th></tr></thead><tbody>${rows}</tbody></table>`;
}

const indexes = new WeakMap<StatusSnapshot, Map<string, StatusHash>>();
function lookup(s: StatusSnapshot, hash: string): StatusHash | undefined {
  let index = indexes.get(s);
  if (!index) {
    index = new Map(s.hashes.map((h) => [h.hash, h]));
    indexes.set(s, index);
  }
  return index.get(hash);
}
const urlOf = (s: StatusSnapshot, hash: string) => lookup(s, hash)?.url;
const nameOf = (s: StatusSnapshot, hash: string) => lookup(s, hash)?.name ?? "";

function readiness(h: StatusHash): SafeHtml {
  if (!h.readiness) return html`<span class="muted">—</span>`;
  return h.readinessPath ? html`${h.readiness} <code>${h.readinessPath}</code>` : html`${h.readiness}`;
}

function why(h: StatusHash): SafeHtml {
  const verdict = h.verdict ? html`<div>${h.verdict}</div>` : "";
  if (!h.error) return html`${verdict}`;
  const [first, ...rest] = h.error.split("\n");
  const error = rest.length
    ? html`<details><summary>${first}</summary><pre>${rest.join("\n")}</pre></details>`
    : html`<div>${first}</div>`;
  return html`${verdict}${error}`;
}

function membersTable(s: StatusSnapshot): SafeHtml {
  const rows = s.members.map(
    (
      m,
    ) => html`<tr data-member="${m.name}" data-health="${m.state}"><td>${m.name}${m.self ? html` <span class="muted">(this host)</span>` : ""}</td>
<td><code>${m.address || "—"}</code></td><td>${badge(m.state, "h")}</td><td class="num">${m.incarnation}</td>
<td class="time">${m.self ? "—" : m.lastContact ? `${age(s.generatedAt - m.lastContact)} ago` : "never"}</td></tr>`,
  );
  return html`<table><thead><tr><th>Member</th><th>Address</th><th>Health</th><th class="num">Incarnation</th><th>Last contact</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function aliasesTable(s: StatusSnapshot): SafeHtml {
  if (s.aliases.length === 0) return html`<p class="empty">No aliases.</p>`;
  const target = (hash: string | null) =>
    hash === null ? html`<span class="muted">removed</span>` : hashLink(hash, urlOf(s, hash));
  const rows = s.aliases.map(
    (
      a: StatusAlias,
    ) => html`<tr data-alias="${a.name}"><td><b>${a.name}</b>${s.zone ? html`<span class="muted">.${s.zone}</span>` : ""}</td><td>${target(a.hash)}</td>
<td><ul class="history">${a.history.map((c) => html`<li>${target(c.hash)} · ${clock(c.at, s.generatedAt)} · by ${c.by}</li>`)}</ul></td></tr>`,
  );
  return html`<table><thead><tr><th>Alias</th><th>Points at</th><th>History (newest first)</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function eventsTable(s: StatusSnapshot): SafeHtml {
  if (s.events.length === 0) return html`<p class="empty">No events yet.</p>`;
  const rows = s.events.map(
    (
      e,
    ) => html`<tr data-hash="${e.hash}" data-kind="${e.kind}"><td class="time fit"><time datetime="${iso(e.at)}">${clock(e.at, s.generatedAt)}</time></td>
<td class="fit">${nameOf(s, e.hash)} ${hashLink(e.hash, urlOf(s, e.hash), 8)}</td><td class="fit">${badge(e.kind)}</td><td class="msg">${e.message}</td></tr>`,
  );
  return html`<table><thead><tr><th>Time (UTC)</th><th>Hash</th><th>Kind</th><th>Reason</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** ISO time, or "" for a time no Date can hold (a provider's bug must not break the page). */
const iso = (at: number) =>
  Number.isFinite(at) && Math.abs(at) <= 8.64e15 ? new Date(at).toISOString() : "";

/** "12:00:01" on the snapshot's (UTC) day, else "2025-01-31 12:00". */
function clock(at: number, now: number): string {
  const t = iso(at);
  if (t === "") return "?";
  return t.slice(0, 10) === iso(now).slice(0, 10) ? t.slice(11, 19) : `${t.slice(0, 10)} ${t.slice(11, 16)}`;
}

function age(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}
