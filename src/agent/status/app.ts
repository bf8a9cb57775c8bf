/**
 * The status page as a hono app: read-only GETs over a StatusSource.
 *   GET /                server-rendered HTML (complete without script)
 *   GET /events          server-sent events: "render" (the page's sections as HTML) at connect and
 *                        on every change, "heartbeat" every heartbeatMs
 *   GET /api/status      the StatusSnapshot as JSON
 *   GET /api/hashes/:h   one hash's entry and its recent events
 */
import { Hono } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { HashdError } from "../../lib/errors.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import { CONTENT_SECURITY_POLICY } from "./page-assets.ts";
import { renderPage, renderSections } from "./render.ts";
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
  log?: (msg: string) => void;
}

export function statusApp(source: StatusSource, options: StatusAppOptions = {}): Hono {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxStreams = options.maxStreams ?? 64;
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

  app.get("/", (c) => c.html(renderPage(source.snapshot())));

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
        await pushUpdates(stream, source, heartbeatMs, c.req.raw.signal);
      } finally {
        streams--;
      }
    });
  });

  return app;
}

/**
 * One stream's loop. Changes only set a flag, and the loop writes one render per wake-up, so a
 * burst of changes or a slow reader costs one fresh render, never a queue of stale ones.
 */
async function pushUpdates(
  stream: SSEStreamingApi,
  source: StatusSource,
  heartbeatMs: number,
  signal: AbortSignal,
): Promise<void> {
  let dirty = true;
  let heartbeat = false;
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  const unsubscribe = source.subscribe(() => {
    dirty = true;
    poke();
  });
  const timer = setInterval(() => {
    heartbeat = true;
    poke();
  }, heartbeatMs);
  stream.onAbort(poke);
  signal.addEventListener("abort", poke);
  let first = true;
  try {
    while (!stream.aborted && !stream.closed && !signal.aborted) {
      if (dirty) {
        dirty = false;
        const data = renderSections(source.snapshot()).value;
        await stream.writeSSE({ event: "render", data, ...(first ? { retry: 3000 } : {}) });
        first = false;
      } else if (heartbeat) {
        heartbeat = false;
        await stream.writeSSE({ event: "heartbeat", data: String(Date.now()) });
      } else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
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
