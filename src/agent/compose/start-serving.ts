import { Hono } from "hono";
import { hashUrlAccess } from "../../model/config.ts";
import { LIVE_STATES } from "../../model/deployment.ts";
import type { Cluster } from "../cluster/cluster.ts";
import { AgentGoneHashes } from "../cluster/gone-hashes.ts";
import { AgentRouteTable } from "../cluster/route-table.ts";
import { controlApi } from "../control/api.ts";
import { removeSocket, serveUnix } from "../control/unix-server.ts";
import {
  HOP_KEY_INFO,
  HopAuth,
  holdsApp,
  IdleScaler,
  type Ingress,
  renderMetrics,
  StopGate,
  startIngress,
} from "../ingress/index.ts";
import { ScaleToZeroPolicy } from "../lifecycle/scale-to-zero.ts";
import type { StateStore } from "../state/store.ts";
import {
  aliasProviders,
  clusterProviders,
  type StatusServer,
  startStatusServer,
  storeStatusSource,
} from "../status/index.ts";
import type { AgentState } from "./open-state.ts";
import type { StartedCluster } from "./start-cluster.ts";
import type { StopStack } from "./stop-stack.ts";

/** What start-loops and tests need of what serves. */
export interface Serving {
  ingress: Ingress;
  scaler: IdleScaler;
  status: StatusServer;
}

/**
 * Phase 3: everything that answers, each with its stop pushed as it starts: the service API
 * (holds, any local process) on its unix socket, the status page, the ingress with its route table,
 * the idle scaler, and last the control API (root only, with /metrics) on its unix socket.
 *
 * The order is the stops' order backwards: on a stop the control API goes first (no activation
 * or alias write starts while the agent goes down), the idle scaler before the ingress drains its
 * requests, and the holds API stays up until they drained (a service that holds or releases while
 * it finishes a request still can). A socket is removed only once it was bound: a conflict with
 * another agent's socket leaves that one alone.
 */
export async function startServing(
  state: AgentState,
  clustered: StartedCluster,
  version: string,
  stops: StopStack,
): Promise<Serving> {
  const { config, paths, log, store, activator, holds, inflight, load, changes } = state;
  const { cluster, aliases, retirer } = clustered;

  const serviceApi = new Hono().route("/", holdsApp(holds, state.holdTokens));
  const service = await serveUnix(paths.serviceSocket, 0o666, serviceApi.fetch);
  stops.push("service API", async () => {
    await service.stop(false);
    removeSocket(paths.serviceSocket);
  });

  const statusSource = storeStatusSource(store, (h) => activator.url(h), {
    ...clusterProviders(cluster),
    ...aliasProviders(() => aliases),
    zone: config.zone,
    inFlight: load.inFlight,
    holds: load.holds,
    refs: (h) => store.get(h)?.refs ?? [],
    verdicts: () => retirer.verdicts,
  });
  const status = startStatusServer(config.status, statusSource);
  stops.push("status page", () => status.stop());

  // Ingress: local sockets, peers' ingresses, aliases.
  const routes = new AgentRouteTable(activator, cluster);
  routes.load(store);
  changes.onDeployment((d) => routes.update(d));
  // counts of a retired hash go (its report row goes after RECENTLY_RETIRED_MS): the table is bounded
  changes.onDeployment((d) => {
    if (d.state === "retired") state.requestStats.forget(d.hash);
  });
  const gate = new StopGate();
  const ingress = startIngress({
    config: {
      hostname: config.ingress.address,
      port: config.ingress.port,
      zone: config.zone,
      member: cluster.self,
      // HTTPS (ingress/tls.ts): a missing or broken certificate refuses the start here
      tls: config.tls && {
        hostname: config.tls.address,
        port: config.tls.port,
        certificateFile: config.tls.certificateFile,
        keyFile: config.tls.keyFile,
        redirectHttp: config.tls.redirectHttp,
        checkSec: config.tls.checkSec,
      },
    },
    routes,
    aliases: { resolveAlias: (name) => aliases.routeOf(name) },
    inflight,
    gate,
    // into the agent's log (the journal): certificate reloads and refusals are worth reading there
    log: (level, event, fields) => {
      if (level !== "debug") log(`ingress ${level}: ${event}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
    },
    hopAuth: HopAuth.create(cluster.derivedKeys(HOP_KEY_INFO)),
    // private previews and 410 Gone (ingress/access.ts, cluster/gone-hashes.ts)
    access: {
      mode: hashUrlAccess(config),
      aliased: (hash) => aliases.isAliased(hash),
      secret: () => state.bypassToken?.secret(),
    },
    gone: new AgentGoneHashes(store, aliases),
    requestStats: state.requestStats,
    sticky: { maxAgeSec: config.sticky.maxAgeSec, disabled: new Set(config.sticky.disable) },
    stickyUse: state.stickyUse,
  });
  // Services are left running on purpose: systemd owns them (docs/architecture.md, invariant 6).
  stops.push("ingress", () => ingress.stop(2000));
  state.bypassToken?.start();
  stops.push("bypass token", () => state.bypassToken?.stop());

  // Scale to zero through systemd (lifecycle/scale-to-zero.ts says which hashes, and how).
  const policy = new ScaleToZeroPolicy({
    store,
    systemctl: state.systemctl,
    activator,
    onChange: changes.deploymentChanged,
  });
  const scaler = new IdleScaler({
    inflight,
    holds,
    gate,
    control: policy,
    beforeStop: (hash) => ingress.dropIdleUpstreams(hash),
  });
  for (const d of store.list()) policy.follow(scaler, d);
  changes.onDeployment((d) => policy.follow(scaler, d));
  scaler.start();
  stops.push("idle scaler", () => scaler.close());

  const api = controlApi(
    {
      store,
      activator,
      version,
      aliases: { aliases, isLive: (hash) => isLive(store, cluster, hash) },
      rollouts: {
        aliases,
        isLive: (hash) => isLive(store, cluster, hash),
        lastJudgement: (alias, rollout) => clustered.rollouts.lastJudgement(alias, rollout),
      },
      cluster,
      status: () => statusSource.snapshot(),
      metrics: () =>
        renderMetrics({
          inflight,
          holds,
          ingress: ingress.stats(),
          idleStops: scaler.stops,
          requestStats: state.requestStats,
        }) + cluster.metrics(),
      drain: { gate, inflight, dropIdleUpstreams: (hash) => ingress.dropIdleUpstreams(hash) },
    },
    log,
  );
  const control = await serveUnix(paths.controlSocket, 0o600, api.fetch);
  stops.push("control API", async () => {
    await control.stop(false);
    removeSocket(paths.controlSocket);
  });

  return { ingress, scaler, status };
}

/** Whether a hash can still serve, here or on a member (an alias may roll back to it). */
function isLive(store: StateStore, cluster: Cluster, hash: string): boolean {
  const d = store.get(hash);
  // a report of a failed hash, or of one still being fetched, is not one that serves
  return (
    (d !== undefined && LIVE_STATES.has(d.state)) ||
    cluster.whoRuns(hash).some((r) => LIVE_STATES.has(r.report.state))
  );
}
