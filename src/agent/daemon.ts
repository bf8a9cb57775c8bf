import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { Hono } from "hono";
import type { Exec } from "../lib/exec.ts";
import { every } from "../lib/periodic.ts";
import { type Config, pathsOf } from "../model/config.ts";
import type { Deployment } from "../model/deployment.ts";
import { LIVE_STATES } from "../model/deployment.ts";
import { Nix } from "../nix/nix.ts";
import { Notifier } from "../systemd/notify.ts";
import { Systemctl } from "../systemd/systemctl.ts";
import { AliasService, type RetentionPolicy } from "./aliases/alias-service.ts";
import { type Cluster, firstAddress, GossipCluster, SoloCluster } from "./cluster/cluster.ts";
import { localReport } from "./cluster/local-report.ts";
import { ReportPublisher } from "./cluster/report-publisher.ts";
import { AgentRouteTable } from "./cluster/route-table.ts";
import { controlApi } from "./control/api.ts";
import { refuseLiveSocket, removeSocket, serveUnix } from "./control/unix-server.ts";
import type { GossipEvent } from "./gossip/index.ts";
import {
  HOP_KEY_INFO,
  Holds,
  HoldTokens,
  HopAuth,
  holdsApp,
  IdleScaler,
  InFlight,
  PROMETHEUS_CONTENT_TYPE,
  renderMetrics,
  StopGate,
  startIngress,
} from "./ingress/index.ts";
import { Activator } from "./lifecycle/activator.ts";
import { reconcile } from "./lifecycle/reconcile.ts";
import { syncServiceStates } from "./lifecycle/unit-watch.ts";
import { RetirementPlanner } from "./retirement/planner.ts";
import { Retirer } from "./retirement/retirer.ts";
import { StateStore } from "./state/store.ts";
import { aliasProviders, clusterProviders, startStatusServer, storeStatusSource } from "./status/index.ts";

/** The agent's way to the host: tests run it against a fake systemd and Nix (test/fakes). */
export interface AgentIo {
  /** runs systemd-run, systemctl, journalctl and nix (default: lib/exec.ts) */
  exec?: Exec;
}

export interface RunningAgent {
  stop(): Promise<void>;
  activator: Activator;
  store: StateStore;
}

/** How often the agent compares ready/idle with what systemd runs (wake-ups and exits). */
const UNIT_WATCH_MS = 2000;
/** How often this host's report (states, in-flight, holds) is offered to gossip if it changed. */
const PUBLISH_MS = 250;
/** How often the retirement planner runs. */
const RETIRE_MS = 1000;

/**
 * `hashd serve`: open state, adopt what systemd runs, join the cluster, serve the control API,
 * the ingress and the status page, and run the loops that publish state and retire old hashes.
 */
export async function startAgent(
  config: Config,
  version: string,
  log = defaultLog,
  io: AgentIo = {},
): Promise<RunningAgent> {
  const paths = pathsOf(config);
  // One agent per runtime directory, and this is checked first: an agent started by hand beside a
  // running one must not reconcile, restore holds or write events into that one's database before
  // it finds out (serveUnix checks again when it binds).
  await refuseLiveSocket(paths.controlSocket);
  const notifier = new Notifier();
  mkdirSync(config.runtimeDir, { recursive: true, mode: 0o755 });
  mkdirSync(paths.socketDir, { recursive: true, mode: 0o755 });

  const store = new StateStore(paths.database);
  const systemctl = new Systemctl(io.exec);
  const nix = new Nix(config.gcRootDir, io.exec);
  const inflight = new InFlight();
  let publishSoon = () => {};
  // Holds outlive the process: a restarted agent starts from the leases its predecessor granted.
  const holds = new Holds({ journal: store, onCountChange: () => publishSoon() });
  const holdTokens = HoldTokens.open(config.stateDir);
  const gate = new StopGate();
  let routes: AgentRouteTable | undefined;
  let scaler: IdleScaler | undefined;
  const onChange = (d: Deployment) => {
    routes?.update(d);
    if (LIVE_STATES.has(d.state)) scaler?.register(d.hash, d.manifest.idleStopSec);
    else scaler?.unregister(d.hash);
    publishSoon();
  };
  const activator = new Activator({
    config,
    socketDir: paths.socketDir,
    store,
    systemctl,
    nix,
    log,
    onChange,
    holdTokens,
    onActivations: () => publishSoon(),
  });

  await notifier.status("reconciling with systemd");
  await reconcile(store, systemctl, activator, log);

  // Aliases: the gossip node's table when clustered, else a local one; history is in SQLite.
  let aliases: AliasService | undefined;
  const restored = new AliasService({ setAliases: () => [], aliases: () => [] }, store.db).latestRecords();
  const onGossip = (e: GossipEvent) => {
    if (e.type === "alias-changed") aliases?.record(e.record);
  };
  const cluster: Cluster = config.gossip
    ? await GossipCluster.start(config, restored, onGossip, log)
    : new SoloCluster(hostname(), restored);
  aliases = new AliasService(cluster.aliasBackend, store.db);
  const load = { inFlight: (h: string) => inflight.count(h), holds: (h: string) => holds.activeCount(h) };

  // Ingress: local sockets, peers' ingresses, aliases; scale to zero through systemd.
  routes = new AgentRouteTable(activator, cluster);
  routes.load(store);
  const ingress = startIngress({
    config: {
      hostname: config.ingress.address,
      port: config.ingress.port,
      zone: config.zone,
      member: cluster.self,
    },
    routes,
    aliases: { resolveAlias: (name) => aliases?.resolve(name) },
    inflight,
    gate,
    hopAuth: HopAuth.create(cluster.derivedKeys(HOP_KEY_INFO)),
  });
  scaler = new IdleScaler({
    inflight,
    holds,
    gate,
    control: { stopService: (hash) => scaleToZero(store, systemctl, activator, hash, onChange) },
    beforeStop: (hash) => ingress.dropIdleUpstreams(hash),
  });
  for (const d of store.list()) if (LIVE_STATES.has(d.state)) scaler.register(d.hash, d.manifest.idleStopSec);
  scaler.start();

  // What peers learn about this host, and the first publication before joining.
  const advertisedIngress = `${config.ingress.address === "0.0.0.0" ? firstAddress() : config.ingress.address}:${ingress.port}`;
  const publisher = new ReportPublisher(
    cluster,
    () => localReport(store, load, activator.activations()),
    advertisedIngress,
  );
  const publish = () => {
    holds.sweep(); // expired leases leave the database too
    publisher.publish();
  };
  publish();
  publishSoon = () => publisher.soon();
  if (cluster instanceof GossipCluster) cluster.join(config.gossip?.seeds ?? []);

  const policy: RetentionPolicy =
    config.retention.policy === "keep-last"
      ? { kind: "keep-last", count: config.retention.count }
      : { kind: config.retention.policy };
  const retirer = new Retirer({
    store,
    systemctl,
    nix,
    activator,
    planner: new RetirementPlanner({ quietMs: config.quietSec * 1000 }),
    aliases,
    policy,
    members: () => cluster.members(localReport(store, load, activator.activations())),
    log,
    onChange,
  });
  const isLive = (hash: string) => {
    const d = store.get(hash);
    // a report of a failed hash, or of one still being fetched, is not one that serves
    return (
      (d !== undefined && LIVE_STATES.has(d.state)) ||
      cluster.whoRuns(hash).some((r) => LIVE_STATES.has(r.report.state))
    );
  };

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

  // Control API (root only) and the service API (holds; any local process).
  const metrics = () =>
    renderMetrics({ inflight, holds, ingress: ingress.stats(), idleStops: scaler?.stops ?? 0 }) +
    (cluster instanceof GossipCluster ? cluster.metrics() : "");
  const api = controlApi(
    {
      store,
      activator,
      version,
      aliases: { aliases, isLive },
      cluster,
      status: () => statusSource.snapshot(),
    },
    log,
  );
  api.get("/metrics", (c) => c.body(metrics(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }));
  const control = await serveUnix(paths.controlSocket, 0o600, api.fetch);
  const serviceApi = new Hono().route("/", holdsApp(holds, holdTokens));
  const service = await serveUnix(paths.serviceSocket, 0o666, serviceApi.fetch);

  const loops = [
    every(UNIT_WATCH_MS, () => syncServiceStates(store, systemctl, activator, onChange), log),
    every(PUBLISH_MS, publish, log),
    every(RETIRE_MS, () => retirer.tick(Date.now()), log),
  ];

  const count = store.list().length;
  await notifier.ready(`serving ${count} deployment(s); ingress ${ingress.url}; status ${status.url}`);
  notifier.startWatchdog();
  log(`hashd ${version}: control ${paths.controlSocket}, ingress ${ingress.url}, status ${status.url}`);

  let stopped = false;
  return {
    activator,
    store,
    async stop() {
      if (stopped) return;
      stopped = true;
      await notifier.stopping();
      for (const l of loops) l.stop();
      await scaler?.close();
      // Services are left running on purpose: systemd owns them (docs/architecture.md, invariant 6).
      await ingress.stop(2000);
      await status.stop();
      await control.stop(false);
      await service.stop(false);
      removeSocket(paths.controlSocket);
      removeSocket(paths.serviceSocket);
      await cluster.stop();
      store.close();
    },
  };
}

/** The idle scaler's stop: the service goes, its socket stays; the hash is then idle. */
async function scaleToZero(
  store: StateStore,
  systemctl: Systemctl,
  activator: Activator,
  hash: string,
  onChange: (d: Deployment) => void,
): Promise<void> {
  const d = store.get(hash);
  if (!d || activator.isBusy(hash)) return;
  await systemctl.stop([activator.units(hash).service]);
  const next = store.transition(
    hash,
    d.generation,
    "idle",
    `no request or hold for ${d.manifest.idleStopSec} s`,
    null,
    "ready",
  );
  if (next) onChange(next);
}

function defaultLog(msg: string): void {
  console.error(msg);
}
