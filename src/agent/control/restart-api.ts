import { Hono } from "hono";
import { HashdError } from "../../lib/errors.ts";
import type { Deployment } from "../../model/deployment.ts";
import { resolveName } from "../aliases/resolve.ts";
import type { Activator } from "../lifecycle/activator.ts";
import type { RestartDrain, RestartResult } from "../lifecycle/restart.ts";
import type { StateStore } from "../state/store.ts";

export interface RestartApiDeps {
  store: Pick<StateStore, "get">;
  activator: Pick<Activator, "restart">;
  /** the ingress's stop gate, in-flight counts and pooled connections (lifecycle/restart.ts) */
  drain: RestartDrain;
  /** the alias table the ingress resolves `<alias>.<zone>` with */
  resolveAlias: (alias: string) => string | undefined;
  /** other members that run a hash, to say where to restart it */
  whoRuns?: (hash: string) => string[];
  /** how a deployment is shown to API clients (api.ts presentDeployment) */
  show: (d: Deployment) => unknown;
}

/** `POST /restart/:name`'s answer. */
export interface NameRestart extends Omit<RestartResult, "deployment"> {
  name: string;
  hash: string;
  /** the alias the name resolved through, null for a hash */
  alias: string | null;
  deployment: unknown;
}

/**
 * `hashd restart <hash|alias>` on the control API (mounted under /v1): the name is read as the
 * ingress reads `<name>.<zone>` (aliases/resolve.ts), and the hash's program restarted on this host
 * once the ingress drained it (lifecycle/restart.ts). The answer comes when the new program is
 * ready, or is the error that says why it is not.
 */
export function restartApi(deps: RestartApiDeps): Hono {
  const app = new Hono();
  app.post("/restart/:name", async (c) => {
    const name = c.req.param("name");
    const r = resolveName(name, deps.resolveAlias);
    if (!r.ok) throw new HashdError(r.reason === "malformed" ? "bad_request" : "not_found", r.message);
    if (!deps.store.get(r.hash)) {
      const elsewhere = deps.whoRuns?.(r.hash) ?? [];
      const what = r.alias ? `alias ${r.alias} points at ${r.hash}, which` : `hash ${r.hash}`;
      const hint = elsewhere.length
        ? ` (it runs on ${elsewhere.join(", ")}: restart it there with --host)`
        : "";
      throw new HashdError("not_found", `${what} is not known on this host${hint}`, {
        hash: r.hash,
        runsOn: elsewhere,
      });
    }
    const result = await deps.activator.restart(r.hash, deps.drain);
    const body: NameRestart = {
      name,
      hash: r.hash,
      alias: r.alias,
      ...result,
      deployment: deps.show(result.deployment),
    };
    return c.json(body);
  });
  return app;
}
