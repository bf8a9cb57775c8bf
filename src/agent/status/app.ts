/**
 * The status page as a hono app: read-only GETs over a StatusSource.
 *   GET /                server-rendered HTML (complete without script); ?q= fills the filter box,
 *                        ?graph= picks the graph's alias ("" = every service; default prod)
 *   GET /hashes/:h       one hash's page: state, units, events, dependents, aliases, commands
 *   GET /events          server-sent events (live.ts): "patch" (changed blocks by key, JSON) at
 *                        connect and on a change, at most one write per minPatchMs; "load"
 *                        (moving numbers by key) in between; "heartbeat" every heartbeatMs
 *   GET /api/status      the StatusSnapshot as JSON
 *   GET /api/hashes/:h   one hash's entry and its recent events
 */
import { Hono } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { HashdError } from "../../lib/errors.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import { renderHashPage } from "./hash-page.ts";
import { LiveDiff } from "./live.ts";
import { CONTENT_SECURITY_POLICY } from "./page-assets.ts";
import { type RenderOptions, renderBlocks, renderPage } from "./render.ts";
import type { StatusSource } from "./types.ts";

export interface StatusAppOptions {
  /** default 15 s: keeps proxies from closing an idle stream and tells the page it is live */
  heartbeatMs?: number;
  /**
   * Host names the page answers to besides IP literals and "localhost" (e.g. "status.example").
   * Any other Host header is refused, so a web page cannot read the status through DNS
   * rebinding. "*" allows every name.
   */
  allowedHosts?: readonly string[];
  /** open SSE streams at most (default 64); more are refused with 503 */
  maxStreams?: number;
  /** least time between two writes of one stream (default 1000 ms): changes in between are merged */
  minPatchMs?: number;
  log?: (msg: string) => void;
}

export function statusApp(source: StatusSource, options: StatusAppOptions = {}): Hono {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxStreams = options.maxStreams ?? 64;
  const minPatchMs = options.minPatchMs ?? 1000;
  const allowed = new Set((options.allowedHosts ?? []).map((h) => h.toLowerCase()));
  const log = options.log ?? ((msg: string) => console.error(msg));
  let streams = 0;
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof HashdError) return c.json(err.toJSON(), err.httpStatus as 400);
    log(`status page: internal error: ${err.stack ?? err}`);
    return c.json(new HashdError("internal", err.message).toJSON(), 500);
  });
  app.notFound((c) => {
    throw new HashdError("not_found", `no route ${c.req.method} ${c.req.path}`);
  });

  app.use("*", async (c, next) => {
    if (!hostAllowed(new URL(c.req.url).hostname, allowed)) {
      throw new HashdError("bad_request", "this host name is not allowed for the status page (allowedHosts)");
    }
    await next();
    c.header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("Cache-Control", "no-store");
  });

  const renderOptions = (q: (k: string) => string | undefined): RenderOptions => {
    const graph = q("graph");
    const filter = q("q");
    return {
      ...(graph !== undefined ? { graph: graph.slice(0, 100) } : {}),
      ...(filter !== undefined ? { q: filter.slice(0, 200) } : {}),
    };
  };

  app.get("/", (c) =>
    c.html(
      renderPage(
        source.snapshot(),
        renderOptions((k) => c.req.query(k)),
      ),
    ),
  );

  app.get("/hashes/:hash", (c) => {
    const hash = parseStoreHash(c.req.param("hash"));
    const snap = source.snapshot();
    const events = source.events?.(hash, 100) ?? snap.events.filter((e) => e.hash === hash);
    if (!snap.hashes.some((h) => h.hash === hash) && events.length === 0)
      throw new HashdError("not_found", `hash ${hash} is not known to ${snap.self}`);
    return c.html(renderHashPage(snap, hash, events));
  });

  // Browsers ask for it on their own; an empty answer keeps a 404 out of their console.
  app.get("/favicon.ico", (c) => c.body(null, 204));

  app.get("/api/status", (c) => c.json(source.snapshot()));

  app.get("/api/hashes/:hash", (c) => {
    const hash = parseStoreHash(c.req.param("hash"));
    const snap = source.snapshot();
    const entry = snap.hashes.find((h) => h.hash === hash);
    if (!entry) throw new HashdError("not_found", `hash ${hash} is not known to ${snap.self}`);
    const events = source.events?.(hash, 50) ?? snap.events.filter((e) => e.hash === hash);
    return c.json({ hash: entry, events });
  });

  app.get("/events", (c) => {
    if (streams >= maxStreams)
      throw new HashdError("unavailable", `${maxStreams} status streams already open`);
    streams++;
    return streamSSE(c, async (stream) => {
      try {
        const opts = renderOptions((k) => c.req.query(k));
        await pushUpdates(stream, source, opts, { heartbeatMs, minPatchMs }, c.req.raw.signal);
      } finally {
        streams--;
      }
    });
  });

  return app;
}

/**
 * One stream's loop. Changes only set a flag, and the loop writes at most one update per
 * minPatchMs, so a burst of changes or a slow reader costs one fresh diff, never a queue of stale
 * ones; the diff (live.ts) sends only what changed since this stream's last write.
 */
async function pushUpdates(
  stream: SSEStreamingApi,
  source: StatusSource,
  opts: RenderOptions,
  timing: { heartbeatMs: number; minPatchMs: number },
  signal: AbortSignal,
): Promise<void> {
  let dirty = true;
  let heartbeat = false;
  let wake: (() => void) | undefined;
  let lastWrite = 0;
  const diff = new LiveDiff();
  const poke = () => wake?.();
  const unsubscribe = source.subscribe(() => {
    dirty = true;
    poke();
  });
  const timer = setInterval(() => {
    heartbeat = true;
    poke();
  }, timing.heartbeatMs);
  stream.onAbort(poke);
  signal.addEventListener("abort", poke);
  let first = true;
  try {
    while (!stream.aborted && !stream.closed && !signal.aborted) {
      const wait = lastWrite + timing.minPatchMs - Date.now();
      if (dirty && wait <= 0) {
        dirty = false;
        lastWrite = Date.now();
        const { patch, loads } = diff.next(renderBlocks(source.snapshot(), opts));
        if (patch || first) {
          const data = JSON.stringify(patch ?? { set: {}, order: {} });
          await stream.writeSSE({ event: "patch", data, ...(first ? { retry: 3000 } : {}) });
          first = false;
        }
        if (loads) await stream.writeSSE({ event: "load", data: JSON.stringify(loads) });
      } else if (heartbeat) {
        heartbeat = false;
        await stream.writeSSE({ event: "heartbeat", data: String(Date.now()) });
      } else {
        let t: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (dirty) t = setTimeout(resolve, wait);
        });
        clearTimeout(t);
        wake = undefined;
      }
    }
  } finally {
    unsubscribe();
    clearInterval(timer);
    signal.removeEventListener("abort", poke);
  }
}

function hostAllowed(hostname: string, allowed: ReadonlySet<string>): boolean {
  const h = hostname.toLowerCase();
  if (allowed.has("*") || allowed.has(h) || h === "localhost") return true;
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.startsWith("["); // IP literals can't be rebound
}
