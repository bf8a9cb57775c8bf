import { Hono } from "hono";
import { z } from "zod";
import { HashdError } from "../../lib/errors.ts";
import { zodProblems } from "../../lib/zod-problems.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import type { HoldTokens } from "./hold-tokens.ts";
import type { Hold, Holds } from "./holds.ts";

/**
 * The holds API for service authors, mounted by the agent on its service API. Every call carries
 * `authorization: Bearer <token>`, the token of the hash it is about (hold-tokens.ts): a service
 * may hold, renew, release and list only its own hash.
 *   POST   /v1/holds            {"hash": "<hash>", "ttlSec": 60}  -> 201 {id, hash, ttlSec, expiresAt}
 *   POST   /v1/holds/:id/renew  {"ttlSec": 60}? (default: the hold's ttl) -> 200 {id, hash, ttlSec, expiresAt}
 *   DELETE /v1/holds/:id        -> 204
 *   GET    /v1/holds?hash=h     -> 200 {holds: [...]}
 * Errors are {error: {code, message}} with the status HashdError derives from the code (403 for a
 * missing or wrong token, checked before anything else is read). See docs/holds.md.
 */
const acquireBody = z.object({ hash: z.string(), ttlSec: z.number() }).strict();
const renewBody = z.object({ ttlSec: z.number().optional() }).strict();

export function holdsApp(holds: Holds, tokens: HoldTokens): Hono {
  const app = new Hono();
  // renew and release name a hold by id (random, known only to its taker); the token must be the
  // hold's hash's all the same, so a leaked id alone releases nothing
  const ownHold = (id: string, authorization: string | undefined): Hold => {
    const hold = holds.get(id);
    tokens.check(hold.hash, authorization);
    return hold;
  };

  app.post("/v1/holds", async (c) => {
    const body = acquireBody.safeParse(await readJson(c.req.raw));
    if (!body.success) throw bodyError(body.error, '{"hash": "<store hash>", "ttlSec": <seconds>}');
    const hash = parseStoreHash(body.data.hash);
    tokens.check(hash, c.req.header("authorization"));
    return c.json(view(holds.acquire(hash, body.data.ttlSec)), 201);
  });

  app.post("/v1/holds/:id/renew", async (c) => {
    const hold = ownHold(c.req.param("id"), c.req.header("authorization"));
    const raw = c.req.header("content-length") === "0" ? {} : await readJson(c.req.raw, {});
    const body = renewBody.safeParse(raw);
    if (!body.success) throw bodyError(body.error, '{"ttlSec": <seconds>} or an empty body');
    return c.json(view(holds.renew(hold.id, body.data.ttlSec)));
  });

  app.delete("/v1/holds/:id", (c) => {
    const hold = ownHold(c.req.param("id"), c.req.header("authorization"));
    holds.release(hold.id);
    return c.body(null, 204);
  });

  app.get("/v1/holds", (c) => {
    const hash = c.req.query("hash");
    if (hash === undefined) throw new HashdError("bad_request", "list holds with ?hash=<your hash>");
    tokens.check(parseStoreHash(hash), c.req.header("authorization"));
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
  const problems = zodProblems(error, "(body)");
  return new HashdError("bad_request", `expected ${expected}: ${problems.join("; ")}`, { problems });
}
