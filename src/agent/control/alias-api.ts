import { Hono } from "hono";
import { z } from "zod";
import { HashdError } from "../../lib/errors.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import type { AliasService } from "../aliases/alias-service.ts";
import { parseAliasName } from "../aliases/names.ts";
import { readJson } from "./read-json.ts";

const setBody = z.object({ set: z.record(z.string(), z.string().nullable()) }).strict();
const pinBody = z.object({ hash: z.string() }).strict();

export interface AliasApiDeps {
  aliases: AliasService;
  /** whether a hash still runs somewhere (rollback refuses retired hashes) */
  isLive: (hash: string) => boolean;
}

/** Aliases and pins on the control API (mounted under /v1 by controlApi). */
export function aliasApi(deps: AliasApiDeps): Hono {
  const app = new Hono();
  const { aliases } = deps;

  app.get("/aliases", (c) => c.json({ aliases: aliases.list(), pins: aliases.pins() }));

  app.post("/aliases", async (c) => {
    const body = await readJson(c.req.raw, setBody);
    return c.json({ aliases: aliases.set(body.set) });
  });

  app.get("/aliases/:name", (c) => {
    const name = parseAliasName(c.req.param("name"));
    const current = aliases.current(name);
    if (!current) throw new HashdError("not_found", `alias ${name} does not exist`);
    return c.json({ alias: current, history: aliases.history(name) });
  });

  app.get("/aliases/:name/history", (c) => {
    const name = parseAliasName(c.req.param("name"));
    return c.json({ name, history: aliases.history(name) });
  });

  app.delete("/aliases/:name", (c) => {
    aliases.remove(c.req.param("name"));
    return c.json({ aliases: aliases.list() });
  });

  app.post("/aliases/:name/rollback", (c) => {
    return c.json({ alias: aliases.rollback(c.req.param("name"), deps.isLive) });
  });

  app.post("/pins", async (c) => {
    const { hash } = await readJson(c.req.raw, pinBody);
    aliases.pin(hash);
    return c.json({ pins: aliases.pins() });
  });

  app.delete("/pins/:hash", (c) => {
    aliases.unpin(parseStoreHash(c.req.param("hash")));
    return c.json({ pins: aliases.pins() });
  });

  return app;
}
