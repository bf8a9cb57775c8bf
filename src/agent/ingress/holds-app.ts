import { Hono } from "hono";
import { z } from "zod";
import { HashdError } from "../../lib/errors.ts";
import type { Hold, Holds } from "./holds.ts";

/**
 * The holds API for service authors, mounted by the agent on its local API:
 *   POST   /v1/holds            {"hash": "<hash>", "ttlSec": 60}  -> 201 {id, hash, ttlSec, expiresAt}
 *   POST   /v1/holds/:id/renew  {"ttlSec": 60}? (default: the hold's ttl) -> 200 {id, hash, ttlSec, expiresAt}
 *   DELETE /v1/holds/:id        -> 204
 *   GET    /v1/holds[?hash=h]   -> 200 {holds: [...]}
 * Errors are {error: {code, message}} with the status HashdError derives from the code.
 * See docs/holds.md.
 */
const acquireBody = z.object({ hash: z.string(), ttlSec: z.number() }).strict();
const renewBody = z.object({ ttlSec: z.number().optional() }).strict();

export function holdsApp(holds: Holds): Hono {
  const app = new Hono();

  app.post("/v1/holds", async (c) => {
    const body = acquireBody.safeParse(await readJson(c.req.raw));
    if (!body.success) throw bodyError(body.error, '{"hash": "<store hash>", "ttlSec": <seconds>}');
    return c.json(view(holds.acquire(body.data.hash, body.data.ttlSec)), 201);
  });

  app.post("/v1/holds/:id/renew", async (c) => {
    const raw = c.req.header("content-length") === "0" ? {} : await readJson(c.req.raw, {});
    const body = renewBody.safeParse(raw);
    if (!body.success) throw bodyError(body.error, '{"ttlSec": <seconds>} or an empty body');
    return c.json(view(holds.renew(c.req.param("id"), body.data.ttlSec)));
  });

  app.delete("/v1/holds/:id", (c) => {
    holds.release(c.req.param("id"));
    return c.body(null, 204);
  });

  app.get("/v1/holds", (c) => {
    const hash = c.req.query("hash");
    return c.json({ holds: holds.list(hash).map(view) });
  });

  app.onError((error, c) => {
    if (error instanceof HashdError) return c.json(error.toJSON(), error.httpStatus as 400);
    console.error("holds API:", error);
    return c.json(new HashdError("internal", "internal error").toJSON(), 500);
  });
  return app;
}

function view(hold: Hold): { id: string; hash: string; ttlSec: number; expiresAt: string } {
  return {
    id: hold.id,
    hash: hold.hash,
    ttlSec: hold.ttlSec,
    expiresAt: new Date(hold.expiresAt).toISOString(),
  };
}

async function readJson(request: Request, empty?: unknown): Promise<unknown> {
  const text = await request.text();
  if (text.trim() === "" && empty !== undefined) return empty;
  try {
    return JSON.parse(text);
  } catch {
    throw new HashdError("bad_request", "request body is not JSON");
  }
}

function bodyError(error: z.ZodError, expected: string): HashdError {
  const problems = error.issues.map((issue) => `${issue.path.join(".") || "(body)"}: ${issue.message}`);
  return new HashdError("bad_request", `expected ${expected}: ${problems.join("; ")}`, { problems });
}
