import { every } from "../../lib/periodic.ts";
import type { Notifier } from "../../systemd/notify.ts";
import { firstAddress } from "../cluster/cluster.ts";
import { ReportPublisher } from "../cluster/report-publisher.ts";
import { RETIRED_ELSEWHERE_FLUSH_MS } from "../cluster/retired-elsewhere.ts";
import { syncServiceStates } from "../lifecycle/unit-watch.ts";
import type { AgentState } from "./open-state.ts";
import type { StartedCluster } from "./start-cluster.ts";
import type { Serving } from "./start-serving.ts";
import type { StopStack } from "./stop-stack.ts";

/** How often the agent compares ready/idle with what systemd runs (wake-ups and exits). */
const UNIT_WATCH_MS = 2000;
/** How often this host's report (states, in-flight, holds) is offered to gossip if it changed. */
const PUBLISH_MS = 250;
/** How often the retirement planner runs. */
const RETIRE_MS = 1000;
/** How often the rollout driver looks (it judges each rollout once per analysis window). */
const ROLLOUT_MS = 250;

/**
 * Phase 4: this host's first report, then the join; the timers (unit watch, publish, retire); and
 * READY to systemd. Its stops run first: STOPPING to systemd, then the timers.
 */
export async function startLoops(
  state: AgentState,
  clustered: StartedCluster,
  serving: Serving,
  version: string,
  notifier: Notifier,
  stops: StopStack,
): Promise<void> {
  const { config, paths, log, store, holds, changes } = state;
  const { cluster, retirer, retiredElsewhere } = clustered;
  const { ingress, status } = serving;

  // What peers learn about this host, and the first publication before joining.
  const advertisedIngress = `${config.ingress.address === "0.0.0.0" ? firstAddress() : config.ingress.address}:${ingress.port}`;
  const publisher = new ReportPublisher(cluster, state.report, advertisedIngress);
  const publish = () => {
    holds.sweep(); // expired leases leave the database too
    publisher.publish();
  };
  publish();
  changes.onReport(() => publisher.soon());
  cluster.join(config.gossip?.seeds ?? []);

  const loops = [
    every(
      UNIT_WATCH_MS,
      () => syncServiceStates(store, state.systemctl, state.activator, changes.deploymentChanged),
      log,
    ),
    every(PUBLISH_MS, publish, log),
    every(RETIRE_MS, () => retirer.tick(Date.now()), log),
    every(ROLLOUT_MS, () => clustered.rollouts.tick(), log),
    // what other members retired, for the ingress's 410 (cluster/retired-elsewhere.ts)
    every(RETIRED_ELSEWHERE_FLUSH_MS, () => retiredElsewhere.flush(Date.now()), log),
  ];
  stops.push("timers", () => {
    for (const l of loops) l.stop();
  });

  const count = store.list().length;
  await notifier.ready(`serving ${count} deployment(s); ingress ${ingress.url}; status ${status.url}`);
  notifier.startWatchdog();
  stops.push("sd_notify", () => notifier.stopping());
  log(`hashd ${version}: control ${paths.controlSocket}, ingress ${ingress.url}, status ${status.url}`);
}
