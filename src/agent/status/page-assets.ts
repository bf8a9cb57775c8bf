/**
 * The page's only stylesheet and script, inline (no external assets), and the Content-Security-
 * Policy that allows exactly these two by hash: even markup that slipped past escaping could run
 * no script, load nothing and post nowhere.
 */
import { createHash } from "node:crypto";
import { type NodeState, PALETTE } from "./graph-svg.ts";

const stateClasses = (Object.entries(PALETTE) as [NodeState, (typeof PALETTE)[NodeState]][])
  .map(([s, c]) => `.s-${s}{background:${c.fill};border-color:${c.stroke};color:${c.text}}`)
  .join("\n");

export const PAGE_CSS = `
:root{color-scheme:light;--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff}
*{box-sizing:border-box}
html{scroll-padding-top:56px}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.top{position:sticky;top:0;z-index:5;display:flex;align-items:center;gap:6px 16px;flex-wrap:wrap;padding:8px 24px;background:#0f172a;color:#e2e8f0}
header h1{margin:0;font-size:17px;font-weight:650;letter-spacing:.2px}
header h1 span{color:#94a3b8;font-weight:500}
header h1 a.back{color:#e2e8f0}
header .meta{margin:0;color:#94a3b8}
header .meta b{color:#e2e8f0;font-weight:600}
nav{display:flex;align-items:center;gap:4px 12px;flex-wrap:wrap;margin-left:auto}
nav a{color:#cbd5e1;font-size:13px}
nav input{font:inherit;font-size:13px;padding:3px 8px;border-radius:6px;border:1px solid #475569;background:#1e293b;color:#f1f5f9;width:220px;max-width:100%}
.live{display:inline-block;margin-left:8px;padding:1px 8px;border-radius:10px;font-size:12px;border:1px solid #475569}
.live.on{color:#86efac;border-color:#16a34a}.live.on::before{content:"● "}
.live.off{color:#cbd5e1}
main{padding:14px 24px 40px;max-width:1400px}
.summary{margin:0 0 6px;color:var(--muted)}
.summary b{color:var(--fg)}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px;margin:0 0 14px;min-width:0}
section h2{margin:0 0 8px;font-size:15px;font-weight:650}
section h2 .muted{font-size:12px;font-weight:400}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:14px;margin:0 0 14px}
.cols section{margin:0}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%}
th{white-space:nowrap;text-align:left;font-weight:600;font-size:11.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.4px;padding:4px 8px;border-bottom:1px solid var(--line)}
td{padding:5px 8px;border-bottom:1px solid #f1f5f9;vertical-align:top}
tr:last-child td{border-bottom:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th.num{text-align:right}
code,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
code.full{overflow-wrap:anywhere}
a{color:#1d4ed8;text-decoration:none}a:hover{text-decoration:underline}
.badge{display:inline-block;padding:0 7px;border:1px solid;border-radius:9px;font-size:12px;line-height:18px;white-space:nowrap}
.h-alive{background:#dcfce7;border-color:#16a34a;color:#14532d}
.h-suspect{background:#fef9c3;border-color:#ca8a04;color:#713f12}
.h-dead{background:#fee2e2;border-color:#dc2626;color:#7f1d1d}
.h-left,.h-unknown{background:#f5f5f5;border-color:#a3a3a3;color:#525252}
.r-running{background:#e0f2fe;border-color:#0284c7;color:#0c4a6e}.r-paused{background:#fef9c3;border-color:#ca8a04;color:#713f12}
.r-aborted{background:#fee2e2;border-color:#dc2626;color:#7f1d1d}.r-done{background:#dcfce7;border-color:#16a34a;color:#14532d}
${stateClasses}
.tag{display:inline-block;margin:0 3px 1px 0;padding:0 6px;border-radius:4px;font-size:11.5px;font-weight:600;line-height:17px;white-space:nowrap;background:#f1f5f9;color:#334155;border:1px solid #cbd5e1}
.t-prod{background:#1d4ed8;color:#fff;border-color:#1d4ed8}.t-staging{background:#7c3aed;color:#fff;border-color:#7c3aed}
.t-preview{background:#f8fafc;color:#475569}
.tag.reached{background:transparent;color:#475569;font-weight:500;border-style:dashed}
.hosts{display:flex;flex-wrap:wrap;gap:2px 10px}
.host{font-size:12px;white-space:nowrap;color:var(--muted)}
.host.stale{opacity:.75;text-decoration:line-through dotted}.host.stale i{text-decoration:none}
.why{color:#334155;min-width:220px;max-width:520px;overflow-wrap:anywhere}
.why pre,.cmd,#hash-page pre{white-space:pre-wrap;margin:4px 0 0;font-size:12px;max-height:200px;overflow:auto;background:#f8fafc;padding:6px;border-radius:6px}
.muted,.empty{color:var(--muted)}
.ok{margin:0;color:#166534}
ul.incidents,ul.mainaliases{margin:4px 0 0;padding:0;list-style:none}
ul.incidents li{padding:3px 8px;margin:0 0 3px;border-left:4px solid;border-radius:4px;overflow-wrap:anywhere}
li.bad{border-color:#dc2626;background:#fef2f2}li.warn{border-color:#ea580c;background:#fff7ed}
ul.mainaliases li{padding:2px 0;overflow-wrap:anywhere}
.svc{border-top:1px solid var(--line);padding:8px 0 4px}
.svc:first-child{border-top:0;padding-top:0}
.svc h3{margin:0 0 2px;font-size:14.5px;font-weight:650;overflow-wrap:anywhere}
.svc h3 .calls{font-size:12px;font-weight:400}
.svc.rank-6 h3{color:var(--muted)}
table.versions td.fit{white-space:nowrap}
details.fold>summary{cursor:pointer;color:var(--muted);font-size:12.5px;padding:2px 0}
details.err>summary{cursor:pointer}
tr.retired td{color:#94a3b8}
.graph-of{margin:0 0 6px}
.graph-wrap{overflow-x:auto}
svg.graph{max-width:100%;height:auto;display:block}
.rollout .steps .step{display:inline-block;padding:0 4px;margin-right:2px;border-radius:3px;background:#f1f5f9;font-size:11.5px;color:#64748b}
.rollout .step.done{background:#dbeafe;color:#1e3a8a}.rollout .step.now{background:#1d4ed8;color:#fff;font-weight:600}
.rollout .note{display:block;font-size:12px;color:#475569}
.weight{font-variant-numeric:tabular-nums}
.history{margin:0;padding:0;list-style:none;font-size:12.5px}
.history li{color:var(--muted)}.history li:first-child{color:var(--fg)}
td.fit{width:1%;white-space:nowrap;padding-right:14px}
td.time{white-space:nowrap;color:var(--muted);font-variant-numeric:tabular-nums}
td.msg{overflow-wrap:anywhere;white-space:pre-line;min-width:200px}
table.kv th{width:1%;vertical-align:top;padding-top:7px}
[hidden]{display:none!important}
@media (max-width:700px){
header.top{padding:6px 12px;position:static}
nav{margin-left:0;width:100%}
nav input{width:100%;order:-1}
main{padding:10px 8px 30px}
section{padding:10px 10px;border-radius:8px}
.cols{display:block}.cols section{margin:0 0 12px}
.why{min-width:180px}
svg.graph{max-width:none;width:640px}
}
`;

/**
 * The live page: applies "patch" (blocks by key) and "load" (numbers by key) from /events, keeps
 * open boxes, scroll positions and the filter across patches, and keeps the filter and the graph's
 * alias in the URL. The first render needs no script at all.
 */
export const PAGE_JS = `(function(){
var live=document.getElementById("live"),q=document.getElementById("filter");
function url(){return new URL(location.href);}
function applyFilter(){if(!q)return;var v=q.value.trim().toLowerCase();
document.querySelectorAll("[data-search]").forEach(function(el){el.hidden=!!v&&el.getAttribute("data-search").indexOf(v)<0;});
document.querySelectorAll("details.fold").forEach(function(d){if(v&&d.querySelector("tr[data-hash]")&&!d.open){var m=false;d.querySelectorAll("tr[data-hash]").forEach(function(r){if(r.getAttribute("data-hash").indexOf(v)>=0)m=true;});if(m)d.open=true;}});}
if(q){q.addEventListener("input",function(){applyFilter();var u=url();if(q.value)u.searchParams.set("q",q.value);else u.searchParams.delete("q");history.replaceState(null,"",u);});applyFilter();}
if(!window.EventSource||!live)return;
function mark(on){live.className="live "+(on?"on":"off");live.textContent=on?"live":"reconnecting";}
function byKey(k){return document.querySelector('[data-key="'+CSS.escape(k)+'"]');}
function patch(d){
var open={},scroll={},made={},tpl=document.createElement("template");
document.querySelectorAll("details[data-key]").forEach(function(e){open[e.getAttribute("data-key")]=e.open;});
document.querySelectorAll("[data-keep-scroll]").forEach(function(e){scroll[e.getAttribute("data-keep-scroll")]=[e.scrollLeft,e.scrollTop];});
var focused=document.activeElement&&document.activeElement.id;
Object.keys(d.set).forEach(function(k){var h=d.set[k],old=byKey(k),tag=/^\\s*<tr/.test(h)?"tbody":"div";
tpl.innerHTML=tag==="tbody"?"<table><tbody>"+h+"</tbody></table>":h;var el=tag==="tbody"?tpl.content.querySelector("tr"):tpl.content.firstElementChild;if(!el)return;
if(old)old.replaceWith(el);else made[k]=el;});
Object.keys(d.order).forEach(function(id){var box=document.getElementById(id);if(!box)return;var have={};
Array.prototype.forEach.call(box.children,function(c){have[c.getAttribute("data-key")]=c;});
var keys=d.order[id],keep={};keys.forEach(function(k,i){var el=have[k]||made[k]||byKey(k);if(!el)return;keep[k]=1;if(box.children[i]!==el)box.insertBefore(el,box.children[i]||null);});
Object.keys(have).forEach(function(k){if(!keep[k])have[k].remove();});
if(id==="preview-rows"){var f=box.closest("details");if(f)f.hidden=keys.length===0;}});
document.querySelectorAll("details[data-key]").forEach(function(e){var k=e.getAttribute("data-key");if(k in open)e.open=open[k];});
document.querySelectorAll("[data-keep-scroll]").forEach(function(e){var s=scroll[e.getAttribute("data-keep-scroll")];if(s){e.scrollLeft=s[0];e.scrollTop=s[1];}});
if(focused){var f2=document.getElementById(focused);if(f2&&f2!==document.activeElement)f2.focus();}
applyFilter();bindGraph();}
function load(d){Object.keys(d).forEach(function(k){document.querySelectorAll('[data-load="'+CSS.escape(k)+'"]').forEach(function(e){e.textContent=d[k];});});}
var es;
function connect(){if(es)es.close();var g=url().searchParams.get("graph");
es=new EventSource("events"+(g!==null?"?graph="+encodeURIComponent(g):""));
es.addEventListener("patch",function(e){patch(JSON.parse(e.data));mark(true);});
es.addEventListener("load",function(e){load(JSON.parse(e.data));mark(true);});
es.addEventListener("heartbeat",function(){mark(true);});
es.onerror=function(){mark(false);};}
function bindGraph(){var s=document.getElementById("graph-of");if(!s||s.dataset.bound)return;s.dataset.bound="1";
s.addEventListener("change",function(){var u=url();u.searchParams.set("graph",s.value);history.replaceState(null,"",u);connect();});}
bindGraph();connect();
})();`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${sha256(PAGE_JS)}`,
  `style-src ${sha256(PAGE_CSS)}`,
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");
