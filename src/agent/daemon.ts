import { type Config, pathsOf } from "../model/config.ts";
import { Notifier } from "../systemd/notify.ts";
import { type AgentIo, openState } from "./compose/open-state.ts";
import { startCluster } from "./compose/start-cluster.ts";
import { startLoops } from "./compose/start-loops.ts";
import { startServing } from "./compose/start-serving.ts";
import { StopStack } from "./compose/stop-stack.ts";
import { refuseLiveSocket } from "./control/unix-server.ts";
import type { Activator } from "./lifecycle/activator.ts";
import type { StateStore } from "./state/store.ts";

export type { AgentIo } from "./compose/open-state.ts";

export interface RunningAgent {
  stop(): Promise<void>;
  activator: Activator;
  store: StateStore;
}

/**
 * `hashd serve`: open state, adopt what systemd runs, join the cluster, serve the control API,
 * the ingress and the status page, and run the loops that publish state and retire old hashes.
 *
 * One phase after another (src/agent/compose/), each taking what the earlier ones made and pushing
 * the stop of what it started: open state -> start cluster -> start serving -> start loops. stop()
 * runs those stops last first; a phase that throws has the stops pushed so far run the same way,
 * and its error is thrown on.
 */
export async function startAgent(
  config: Config,
  version: string,
  log = defaultLog,
  io: AgentIo = {},
): Promise<RunningAgent> {
  // One agent per runtime directory, and this is checked first: an agent started by hand beside a
  // running one must not reconcile, restore holds or write events into that one's database before
  // it finds out (serveUnix checks again when it binds).
  await refuseLiveSocket(pathsOf(config).controlSocket);
  const notifier = new Notifier();
  const stops = new StopStack(log);
  try {
    const state = await openState(config, log, io, notifier, stops);
    const clustered = await startCluster(state, stops);
    const serving = await startServing(state, clustered, version, stops);
    await startLoops(state, clustered, serving, version, notifier, stops);
    return { activator: state.activator, store: state.store, stop: () => stops.stopAll() };
  } catch (e) {
    await stops.stopAll();
    throw e;
  }
}

function defaultLog(msg: string): void {
  console.error(msg);
}
