import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { HashdError } from "../../lib/errors.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../../lib/prometheus.ts";
import type { Deployment } from "../../model/deployment.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import { Systemctl } from "../../systemd/systemctl.ts";
import type { Cluster } from "../cluster/cluster.ts";
import type { Activator } from "../lifecycle/activator.ts";
import type { RestartDrain } from "../lifecycle/restart.ts";
import type { StateStore } from "../state/store.ts";
import { type AliasApiDeps, aliasApi } from "./alias-api.ts";
import { logsApi } from "./logs-api.ts";
import { readJson } from "./read-json.ts";
import { restartApi } from "./restart-api.ts";
import { type RolloutApiDeps, rolloutApi } from "./rollout-api.ts";

const activateBody = z
  .object({
    path: z.string(),
    wait: z.boolean().optional(),
    timeoutSec: z.number().positive().max(3600).optional(),
    force: z.boolean().optional(),
    lazy: z.boolean().optional(),
    substituter: z.string().min(1).optional(),
  })
  .strict();

export interface ApiDeps {
  store: StateStore;
  activator: Activator;
  version: string;
  /** reads a unit's journal (`hashd logs`, logs-api.ts); a fake in tests */
  journal?: Pick<Systemctl, "journal">;
  /** aliases and pins; without them the alias routes answer 404 */
  aliases?: AliasApiDeps;
  /** staged rollouts and guards (rollout-api.ts); without them those routes answer 404 */
  rollouts?: RolloutApiDeps;
  /** the status page's snapshot (`GET /v1/status`, `hashd status`) */
  status?: () => unknown;
  /** the agent's Prometheus text (`GET /metrics`: ingress, holds, idle stops, gossip) */
  metrics?: () => string;
  /**
   * the ingress's stop gate, in-flight counts and pooled connections, which `hashd restart` drains
   * a hash with (`POST /v1/restart/:name`, lifecycle/restart.ts); without them that route answers 404
   */
  drain?: RestartDrain;
  /** gossip membership (`GET /v1/members`); without it that route answers 404 */
  cluster?: Pick<Cluster, "self" | "memberInfos" | "memberState"> & Partial<Pick<Cluster, "whoRuns">>;
}

/** One member as `GET /v1/members` shows it: gossip's view plus the state it reports. */
export function presentMembers(cluster: NonNullable<ApiDeps["cluster"]>) {
  return cluster.memberInfos().map((m) => {
    const state = cluster.memberState(m.name);
    return {
      ...m,
      self: m.name === cluster.self,
      ingress: state?.ingress ?? null,
      hashes: state?.hashes ?? [],
    };
  });
}

/** What a deployment looks like to API clients: the record plus its URL and unit names. */
export function presentDeployment(d: Deployment, activator: Activator) {
  const units = activator.units(d.hash);
  return {
    ...d,
    url: activator.url(d.hash),
    socketPath: units.socketPath,
    units: { socket: units.socket, service: units.service },
  };
}

/**
 * The control API, served on a root-only unix socket. Errors are mapped once, in onError:
 * a HashdError becomes its status and JSON body; anything else is a logged 500.
 */
export function controlApi(deps: ApiDeps, log: (msg: string) => void): Hono {
  const app = new Hono();
  const show = (d: Deployment) => presentDeployment(d, deps.activator);

  app.onError((err, c) => {
    if (err instanceof HashdError) return c.json(err.toJSON(), err.httpStatus as 400);
    log(`internal error: ${err.stack ?? err}`);
    return c.json(new HashdError("internal", err.message).toJSON(), 500);
  });
  app.notFound((c) =>
    c.json(new HashdError("not_found", `no route ${c.req.method} ${c.req.path}`).toJSON(), 404),
  );
  app.use(
    "*",
    bodyLimit({
      maxSize: 64 * 1024,
      onError: () => {
        throw new HashdError("bad_request", "request body larger than 64 KiB");
      },
    }),
  );

  app.get("/v1/health", (c) =>
    c.json({ ok: true, version: deps.version, deployments: deps.store.list().length }),
  );

  app.get("/v1/deployments", (c) => c.json({ deployments: deps.store.list().map(show) }));

  app.get("/v1/deployments/:hash", (c) => {
    const hash = parseStoreHash(c.req.param("hash"));
    const d = deps.store.get(hash);
    if (!d) throw new HashdError("not_found", `hash ${hash} is not known on this host`);
    return c.json({ deployment: show(d), events: deps.store.events(hash, 50) });
  });

  const cluster = deps.cluster;
  app.route(
    "/v1",
    logsApi({
      store: deps.store,
      activator: deps.activator,
      journal: deps.journal ?? new Systemctl(),
      resolveAlias: (alias) => deps.aliases?.aliases.resolve(alias),
      whoRuns: (hash) => cluster?.whoRuns?.(hash).map((r) => r.member) ?? [],
    }),
  );

  app.post("/v1/deployments", async (c) => {
    const body = await readJson(c.req.raw, activateBody);
    const result = await deps.activator.activate({
      path: body.path,
      ...(body.wait !== undefined ? { wait: body.wait } : {}),
      ...(body.timeoutSec !== undefined ? { timeoutMs: body.timeoutSec * 1000 } : {}),
      ...(body.force !== undefined ? { force: body.force } : {}),
      ...(body.lazy !== undefined ? { lazy: body.lazy } : {}),
      ...(body.substituter !== undefined ? { substituter: body.substituter } : {}),
    });
    return c.json(
      { deployment: show(result.deployment), existing: result.existing },
      result.existing ? 200 : 201,
    );
  });

  app.delete("/v1/deployments/:hash", async (c) => {
    const d = await deps.activator.deactivate(c.req.param("hash"));
    return c.json({ deployment: show(d) });
  });

  if (deps.aliases) app.route("/v1", aliasApi(deps.aliases));
  if (deps.rollouts) app.route("/v1", rolloutApi(deps.rollouts));

  const drain = deps.drain;
  if (drain)
    app.route(
      "/v1",
      restartApi({
        store: deps.store,
        activator: deps.activator,
        drain,
        resolveAlias: (alias) => deps.aliases?.aliases.resolve(alias),
        whoRuns: (hash) => cluster?.whoRuns?.(hash).map((r) => r.member) ?? [],
        show,
      }),
    );

  const status = deps.status;
  if (status) app.get("/v1/status", (c) => c.json(status()));

  const metrics = deps.metrics;
  if (metrics)
    app.get("/metrics", (c) => c.body(metrics(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }));

  if (cluster) {
    // Every member gossip knows (this one included), with state, incarnation and last contact.
    // A solo agent (no gossip section in the config) answers an empty list.
    app.get("/v1/members", (c) => c.json({ self: cluster.self, members: presentMembers(cluster) }));
  }

  app.get("/v1/events", (c) => {
    const hash = c.req.query("hash");
    return c.json({ events: deps.store.events(hash ? parseStoreHash(hash) : undefined, 200) });
  });

  return app;
}
