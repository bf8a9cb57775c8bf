/**
 * One hash's page (/hashes/<hash>): its state here and on every member, its systemd units, what
 * it calls and who depends on it, the aliases that point at it or reach it, its events with their
 * reasons, and the `hashd` commands to look closer. Static (no live updates): reload to refresh.
 */

import { nodeState } from "./graph-svg.ts";
import { html, raw, safeHref } from "./html.ts";
import { PAGE_CSS, PAGE_JS } from "./page-assets.ts";
import { aliasTag, badge, clock, context, hashRef, iso, reason } from "./render.ts";
import type { StatusEvent, StatusSnapshot } from "./types.ts";
import { aliasTargets, closureOf, compareAliases, short, UNNAMED } from "./view.ts";

export function renderHashPage(s: StatusSnapshot, hash: string, events: readonly StatusEvent[]): string {
  const ctx = context(s);
  const h = ctx.byHash.get(hash);
  const name = h?.name ?? UNNAMED;
  const state = h ? nodeState(h) : "unknown";
  const refsOf = (x: string) => ctx.byHash.get(x)?.refs ?? [];
  const dependents = s.hashes.filter((x) => x.refs.includes(hash));
  const pointing = [...s.aliases].sort(compareAliases).filter((a) => aliasTargets(a).includes(hash));
  const reaching = [...s.aliases]
    .sort(compareAliases)
    .filter((a) => !aliasTargets(a).includes(hash) && closureOf(aliasTargets(a), refsOf).has(hash));
  const units = [`hashd-${hash}.socket`, `hashd-${hash}.service`];
  const href = safeHref(h?.url);
  const title = `${name} ${short(hash)} · hashd`;
  const cmd = (text: string) => html`<pre class="cmd"><code>${text}</code></pre>`;
  const body = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><style>${raw(PAGE_CSS)}</style></head>
<body><header class="top"><h1><a class="back" href="/">hashd <span>${s.self}</span></a> / ${name} <code>${short(hash)}</code></h1></header>
<main id="hash-page" data-hash="${hash}">
<section><h2>${name} ${badge(state)}</h2>
<table class="kv"><tbody>
<tr><th>Hash</th><td><code class="full">${hash}</code></td></tr>
<tr><th>On ${s.self}</th><td>${h?.state ? badge(h.state) : html`<span class="muted">not on this host</span>`}${h?.deployedAt ? html` · deployed <time datetime="${iso(h.deployedAt)}">${clock(h.deployedAt, s.generatedAt)}</time> UTC` : ""}</td></tr>
<tr><th>Members</th><td>${h?.hosts.length ? h.hosts.map((x) => html`<div>${x.member} ${badge(x.state)} ${x.stale ? html`<i class="muted">last known (member down)</i>` : html`${x.inFlight} in flight, ${x.holds} holds`}</div>`) : html`<span class="muted">no member reports it</span>`}</td></tr>
<tr><th>Why</th><td>${h?.verdict ? reason(ctx, h.verdict) : html`<span class="muted">—</span>`}${h?.error ? html`<pre>${h.error}</pre>` : ""}</td></tr>
<tr><th>Readiness</th><td>${h?.readiness ? html`${h.readiness}${h.readinessPath ? html` <code>${h.readinessPath}</code>` : ""}` : html`<span class="muted">—</span>`}</td></tr>
<tr><th>Units</th><td>${units.map((u) => html`<div><code>${u}</code></div>`)}</td></tr>
<tr><th>URL</th><td>${href ? html`<a href="${href}">${href}</a>` : html`<span class="muted">—</span>`}</td></tr>
<tr><th>Aliases</th><td>${pointing.length || reaching.length ? html`${pointing.map((a) => aliasTag(a.name))}${reaching.map((a) => aliasTag(a.name, true))}` : html`<span class="muted">none</span>`}</td></tr>
<tr><th>Calls</th><td>${h?.refs.length ? h.refs.map((r) => html`<div>${hashRef(ctx, r)}</div>`) : html`<span class="muted">nothing</span>`}</td></tr>
<tr><th>Depended on by</th><td>${dependents.length ? dependents.map((d) => html`<div>${hashRef(ctx, d.hash)} ${badge(nodeState(d))}</div>`) : html`<span class="muted">nothing</span>`}</td></tr>
</tbody></table></section>
<section><h2>Commands</h2>
${cmd(`hashd logs ${hash} -n 200`)}${cmd(`hashd show ${hash}`)}${cmd(`systemctl status ${units.join(" ")}`)}</section>
<section><h2>Events</h2><div class="scroll"><table><thead><tr><th>Time (UTC)</th><th>Kind</th><th>Reason</th></tr></thead><tbody>
${events.length ? events.map((e) => html`<tr data-kind="${e.kind}"><td class="time fit"><time datetime="${iso(e.at)}">${clock(e.at, s.generatedAt)}</time></td><td class="fit">${badge(e.kind)}</td><td class="msg">${reason(ctx, e.message)}</td></tr>`) : html`<tr><td colspan="3" class="muted">No events on this host.</td></tr>`}
</tbody></table></div></section>
</main><script>${raw(PAGE_JS)}</script></body></html>`;
  return body.value;
}
