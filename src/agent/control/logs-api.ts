import { Hono } from "hono";
import { HashdError } from "../../lib/errors.ts";
import type { Deployment } from "../../model/deployment.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import { journalUnitsOf } from "../../systemd/proxied-unit.ts";
import type { Systemctl } from "../../systemd/systemctl.ts";
import { resolveName } from "../aliases/resolve.ts";
import type { Activator } from "../lifecycle/activator.ts";
import type { StateStore } from "../state/store.ts";

export interface LogsApiDeps {
  store: Pick<StateStore, "get">;
  activator: Pick<Activator, "units">;
  journal: Pick<Systemctl, "journal">;
  /** the alias table the ingress resolves `<alias>.<zone>` with */
  resolveAlias: (alias: string) => string | undefined;
  /** other members that run a hash, to say where its journal is */
  whoRuns?: (hash: string) => string[];
}

/** `GET /v1/logs/:name`: which hash a name is, the units whose journal is the hash's log, and its last lines. */
export interface NameLogs {
  name: string;
  hash: string;
  /** the alias the name resolved through, null for a hash */
  alias: string | null;
  /** the service (fd mode), or the program's unit and its proxy's (proxied modes) */
  unit: string | string[];
  lines: string[];
}

export const MAX_LINES = 10_000;

/**
 * The journal of a hash, by hash or alias, on the control API (mounted under /v1):
 * - `GET /deployments/:hash/logs?lines=N` (1 to 10000, default 50), by hash only;
 * - `GET /logs/:name?lines=N`, by hash or alias, resolved as the ingress resolves `<name>.<zone>`;
 *   `lines=0` reads nothing and answers the hash and units (`hashd logs --follow` then runs
 *   journalctl itself, so the stream never passes through the agent).
 */
export function logsApi(deps: LogsApiDeps): Hono {
  const app = new Hono();

  app.get("/deployments/:hash/logs", async (c) => {
    const hash = parseStoreHash(c.req.param("hash"));
    const lines = parseLines(c.req.query("lines"), 1);
    const d = known(deps, hash, `hash ${hash} is not known on this host`);
    return c.json({ hash, ...(await read(deps, d, lines)) });
  });

  app.get("/logs/:name", async (c) => {
    const name = c.req.param("name");
    const lines = parseLines(c.req.query("lines"), 0);
    const r = resolveName(name, deps.resolveAlias);
    if (!r.ok) throw new HashdError(r.reason === "malformed" ? "bad_request" : "not_found", r.message);
    const what = r.alias ? `alias ${r.alias} points at ${r.hash}, which` : `hash ${r.hash}`;
    const d = known(deps, r.hash, `${what} is not known on this host`);
    const body: NameLogs = { name, hash: r.hash, alias: r.alias, ...(await read(deps, d, lines)) };
    return c.json(body);
  });

  return app;
}

function parseLines(value: string | undefined, min: number): number {
  const lines = value === undefined ? 50 : /^[0-9]{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(lines >= min && lines <= MAX_LINES)) {
    throw new HashdError("bad_request", `lines must be a whole number from ${min} to ${MAX_LINES}`);
  }
  return lines;
}

function known(deps: LogsApiDeps, hash: string, message: string): Deployment {
  const d = deps.store.get(hash);
  if (d) return d;
  const elsewhere = deps.whoRuns?.(hash) ?? [];
  const hint = elsewhere.length ? ` (it runs on ${elsewhere.join(", ")}: ask there with --host)` : "";
  throw new HashdError("not_found", `${message}${hint}`, { hash, runsOn: elsewhere });
}

async function read(deps: LogsApiDeps, d: Deployment, lines: number) {
  const units = deps.activator.units(d.hash);
  const unit = journalUnitsOf(units, d.manifest);
  if (lines === 0) return { unit, lines: [] };
  const text = await deps.journal.journal(unit, lines, "short-iso");
  return { unit, lines: text.split("\n").filter((l) => l && l !== "-- No entries --") };
}
