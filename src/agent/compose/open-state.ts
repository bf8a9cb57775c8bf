import { mkdirSync } from "node:fs";
import type { Exec } from "../../lib/exec.ts";
import type { AliasRecord } from "../../model/alias-record.ts";
import { type Config, type Paths, pathsOf } from "../../model/config.ts";
import type { HashReport } from "../../model/reports.ts";
import { Nix } from "../../nix/nix.ts";
import type { Notifier } from "../../systemd/notify.ts";
import { Systemctl } from "../../systemd/systemctl.ts";
import { latestAliasRecords } from "../aliases/alias-service.ts";
import { type LoadSource, localReport } from "../cluster/local-report.ts";
import { BypassTokenFile, Holds, HoldTokens, InFlight, RequestStats, StickyUse } from "../ingress/index.ts";
import { Activator } from "../lifecycle/activator.ts";
import { reconcile } from "../lifecycle/reconcile.ts";
import { DecisionReasons, type Verdict } from "../retirement/verdicts.ts";
import { StateStore } from "../state/store.ts";
import { LocalChanges } from "./local-changes.ts";
import type { StopStack } from "./stop-stack.ts";

/** The agent's way to the host: tests run it against a fake systemd and Nix (test/fakes). */
export interface AgentIo {
  /** runs systemd-run, systemctl, journalctl and nix (default: lib/exec.ts) */
  exec?: Exec;
}

/** This host's state, open and true to what systemd runs: what every later phase reads. */
export interface AgentState {
  config: Config;
  paths: Paths;
  log: (msg: string) => void;
  store: StateStore;
  systemctl: Systemctl;
  nix: Nix;
  activator: Activator;
  /** leases on hashes, restored from the database (a restarted agent keeps its predecessor's) */
  holds: Holds;
  holdTokens: HoldTokens;
  /** requests in flight through the ingress, by hash */
  inflight: InFlight;
  /** what the ingress answered per hash and alias (rollouts, /metrics, the report) */
  requestStats: RequestStats;
  /** when clients a sticky cookie pinned to a hash may come back (the report publishes it) */
  stickyUse: StickyUse;
  /** the retirer's verdicts, for the report's reasons (start-cluster sets them once it runs) */
  verdicts: { current: () => ReadonlyMap<string, Verdict> };
  /** in flight, holds, counts, sticky use and reasons per hash, as the report and the status page read them */
  load: LoadSource;
  /** what later phases follow: a deployment's new row, a change of the report */
  changes: LocalChanges;
  /** this host's report to its peers (cluster/local-report.ts): the publisher's and the retirer's */
  report: () => HashReport[];
  /** the winning alias records of the history, for the cluster's alias table */
  restoredAliases: AliasRecord[];
  /** access.bypassTokenFile, read (private previews: the ingress asks it for the token) */
  bypassToken: BypassTokenFile | undefined;
}

/**
 * Phase 1, after the single-instance check: the directories, the SQLite store (its close is the
 * first stop pushed), holds, the activator, and a reconcile that adopts what systemd runs and
 * re-creates what a reboot removed.
 */
export async function openState(
  config: Config,
  log: (msg: string) => void,
  io: AgentIo,
  notifier: Notifier,
  stops: StopStack,
): Promise<AgentState> {
  const paths = pathsOf(config);
  // first of all: a missing, empty or too short bypass token stops the start before anything is touched
  const tokenFile = config.access.bypassTokenFile;
  const bypassToken = tokenFile === undefined ? undefined : BypassTokenFile.open(tokenFile, log);
  mkdirSync(config.runtimeDir, { recursive: true, mode: 0o755 });
  mkdirSync(paths.socketDir, { recursive: true, mode: 0o755 });

  const store = new StateStore(paths.database);
  stops.push("state store", () => store.close());
  const systemctl = new Systemctl(io.exec);
  const nix = new Nix(config.gcRootDir, io.exec);
  const changes = new LocalChanges();
  const inflight = new InFlight();
  // Holds outlive the process: a restarted agent starts from the leases its predecessor granted.
  const holds = new Holds({ journal: store, onCountChange: changes.reportChanged });
  const holdTokens = HoldTokens.open(config.stateDir);
  const activator = new Activator({
    config,
    socketDir: paths.socketDir,
    store,
    systemctl,
    nix,
    log,
    onChange: changes.deploymentChanged,
    holdTokens,
    onActivations: changes.reportChanged,
  });

  await notifier.status("reconciling with systemd");
  await reconcile(store, systemctl, activator, log);

  const requestStats = new RequestStats();
  const stickyUse = new StickyUse();
  const verdicts: AgentState["verdicts"] = { current: () => new Map() };
  const reasons = new DecisionReasons();
  const load: LoadSource = {
    inFlight: (h) => inflight.count(h),
    holds: (h) => holds.activeCount(h),
    counts: (h) => requestStats.countsOf(h),
    stickyUntil: (h, now) => stickyUse.untilOf(h, now),
    why: (h) => reasons.reasonOf(h, verdicts.current().get(h)),
  };
  return {
    config,
    paths,
    log,
    store,
    systemctl,
    nix,
    activator,
    holds,
    holdTokens,
    inflight,
    requestStats,
    stickyUse,
    verdicts,
    load,
    changes,
    report: () => {
      reasons.prune(verdicts.current());
      return localReport(store, load, activator.activations());
    },
    restoredAliases: latestAliasRecords(store.db),
    bypassToken,
  };
}
