import { chmodSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import { HashdError } from "../lib/errors.ts";
import { Nix } from "../nix/nix.ts";
import { Notifier } from "../systemd/notify.ts";
import { Systemctl } from "../systemd/systemctl.ts";
import { Activator } from "./activator.ts";
import { controlApi } from "./api.ts";
import { type Config, pathsOf } from "./config.ts";
import { reconcile } from "./reconcile.ts";
import { StateStore } from "./state/store.ts";
import { syncServiceStates } from "./unit-watch.ts";

export interface RunningAgent {
  stop(): Promise<void>;
  activator: Activator;
  store: StateStore;
}

/** `hashd serve`: open state, adopt what systemd runs, serve the control API, tell systemd. */
export async function startAgent(config: Config, version: string, log = defaultLog): Promise<RunningAgent> {
  const paths = pathsOf(config);
  const notifier = new Notifier();
  mkdirSync(config.runtimeDir, { recursive: true, mode: 0o755 });
  mkdirSync(paths.socketDir, { recursive: true, mode: 0o755 });
  await refuseSecondAgent(paths.controlSocket);

  const store = new StateStore(paths.database);
  const systemctl = new Systemctl();
  const nix = new Nix(config.gcRootDir);
  const activator = new Activator({ config, socketDir: paths.socketDir, store, systemctl, nix, log });

  await notifier.status("reconciling with systemd");
  await reconcile(store, systemctl, activator, log);

  const app = controlApi({ store, activator, version }, log);
  // The control socket is root-only: created under umask 077 and chmod'ed, never a TCP port.
  const oldUmask = process.umask(0o077);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ unix: paths.controlSocket, fetch: app.fetch });
  } finally {
    process.umask(oldUmask);
  }
  chmodSync(paths.controlSocket, 0o600);

  const watch = every(UNIT_WATCH_MS, () => syncServiceStates(store, systemctl, activator, () => {}), log);

  const count = store.list().length;
  await notifier.ready(`serving ${count} deployment(s) on ${paths.controlSocket}`);
  notifier.startWatchdog();
  log(`hashd ${version} serving on ${paths.controlSocket}`);

  let stopped = false;
  return {
    activator,
    store,
    async stop() {
      if (stopped) return;
      stopped = true;
      await notifier.stopping();
      watch.stop();
      // Services are left running on purpose: systemd owns them (invariant 6).
      await server.stop(false);
      try {
        unlinkSync(paths.controlSocket);
      } catch {}
      store.close();
    },
  };
}

async function refuseSecondAgent(controlSocket: string): Promise<void> {
  if (!existsSync(controlSocket)) return;
  const alive = await fetch("http://agent/v1/health", {
    unix: controlSocket,
    signal: AbortSignal.timeout(1000),
  })
    .then(() => true)
    .catch(() => false);
  if (alive) throw new HashdError("conflict", `another agent already serves ${controlSocket}`);
  unlinkSync(controlSocket); // left behind by a killed agent
}

/** How often the agent compares ready/idle with what systemd runs (wake-ups and exits). */
const UNIT_WATCH_MS = 2000;

/** Runs `task` every `ms`, never two at once; a failure is logged and the loop goes on. */
function every(ms: number, task: () => Promise<unknown>, log: (msg: string) => void): { stop(): void } {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await task();
    } catch (e) {
      log(`periodic task failed: ${(e as Error).message}`);
    } finally {
      running = false;
    }
  }, ms);
  return { stop: () => clearInterval(timer) };
}

function defaultLog(msg: string): void {
  console.error(msg);
}
