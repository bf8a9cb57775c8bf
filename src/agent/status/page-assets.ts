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
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;gap:16px;flex-wrap:wrap;padding:14px 24px;background:#0f172a;color:#e2e8f0}
header h1{margin:0;font-size:18px;font-weight:650;letter-spacing:.2px}
header h1 span{color:#94a3b8;font-weight:500}
header .meta{margin:0;color:#94a3b8}
header .meta b{color:#e2e8f0;font-weight:600}
.live{display:inline-block;margin-left:8px;padding:1px 8px;border-radius:10px;font-size:12px;border:1px solid #475569}
.live.on{color:#86efac;border-color:#16a34a}.live.on::before{content:"● "}
.live.off{color:#cbd5e1}
main{padding:18px 24px 40px;max-width:1400px}
.summary{margin:0 0 14px;color:var(--muted)}
.summary b{color:var(--fg)}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:0 0 16px}
section h2{margin:0 0 10px;font-size:15px;font-weight:650}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
.cols section{margin:0}
.cols{margin:0 0 16px}
table{border-collapse:collapse;width:100%}
th{white-space:nowrap;text-align:left;font-weight:600;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.4px;padding:6px 8px;border-bottom:1px solid var(--line)}
td{padding:7px 8px;border-bottom:1px solid #f1f5f9;vertical-align:top}
tr:last-child td{border-bottom:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th.num{text-align:right}
code,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
a{color:#1d4ed8;text-decoration:none}a:hover{text-decoration:underline}
.badge{display:inline-block;padding:0 7px;border:1px solid;border-radius:9px;font-size:12px;line-height:18px;white-space:nowrap}
.h-alive{background:#dcfce7;border-color:#16a34a;color:#14532d}
.h-suspect{background:#fef9c3;border-color:#ca8a04;color:#713f12}
.h-dead{background:#fee2e2;border-color:#dc2626;color:#7f1d1d}
.h-left,.h-unknown{background:#f5f5f5;border-color:#a3a3a3;color:#525252}
${stateClasses}
.hosts{display:flex;flex-wrap:wrap;gap:4px 10px}
.host{font-size:12px;white-space:nowrap;color:var(--muted)}
.why{color:#334155;max-width:420px;overflow-wrap:anywhere}
.why pre{white-space:pre-wrap;margin:4px 0 0;font-size:12px;max-height:160px;overflow:auto;background:#f8fafc;padding:6px;border-radius:6px}
.muted,.empty{color:var(--muted)}
tr.retired td{color:#94a3b8}
.graph-wrap{overflow-x:auto}
.legend{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 8px}
.history{margin:0;padding:0;list-style:none;font-size:12.5px}
.history li{color:var(--muted)}.history li:first-child{color:var(--fg)}
td.fit{width:1%;white-space:nowrap;padding-right:18px}
td.time{white-space:nowrap;color:var(--muted);font-variant-numeric:tabular-nums}
td.msg{overflow-wrap:anywhere;white-space:pre-line}
.calls{white-space:nowrap}
`;

/** Applies server-rendered fragments pushed over SSE; the first render needs no script at all. */
export const PAGE_JS = `(function(){
var main=document.getElementById("status"),live=document.getElementById("live");
if(!window.EventSource||!main||!live)return;
function mark(on){live.className="live "+(on?"on":"off");live.textContent=on?"live":"reconnecting";}
var es=new EventSource("events");
es.addEventListener("render",function(e){main.innerHTML=e.data;mark(true);});
es.addEventListener("heartbeat",function(){mark(true);});
es.onerror=function(){mark(false);};
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
