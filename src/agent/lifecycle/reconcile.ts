import { type Deployment, LIVE_STATES } from "../../model/deployment.ts";
import { isProxied, unitsOf } from "../../systemd/proxied-unit.ts";
import type { Systemctl, UnitProperties } from "../../systemd/systemctl.ts";
import type { StateStore } from "../state/store.ts";
import type { Activator } from "./activator.ts";

export interface ReconcileReport {
  adopted: string[];
  recreated: string[];
  failed: string[];
}

/**
 * At start the agent adopts what systemd already runs and re-creates what it lost. systemd owns
 * the units, so a restart of the agent (even kill -9) touches no running service; after a reboot
 * the transient units are gone and are re-created from the database (docs/architecture.md,
 * invariant 6). A proxied hash (unix, port) counts as present only with its program's unit too.
 */
export async function reconcile(
  store: StateStore,
  systemctl: Systemctl,
  activator: Activator,
  log: (msg: string) => void,
): Promise<ReconcileReport> {
  const live = store.list().filter((d) => LIVE_STATES.has(d.state));
  const report: ReconcileReport = { adopted: [], recreated: [], failed: [] };
  if (live.length === 0) return report;
  if (live.some((d) => isProxied(d.manifest))) {
    // Points the helper links at this agent's binary and the current systemd-socket-proxyd.
    try {
      activator.proxyHelpers();
    } catch (e) {
      log(`reconcile: ${(e as Error).message}`);
    }
  }
  const unitNames = live.flatMap((d) => {
    const u = activator.units(d.hash);
    return unitsOf(u, d.manifest);
  });
  const props = await systemctl.show(unitNames, ["LoadState", "ActiveState", "SubState"]);
  for (const d of live) {
    const u = activator.units(d.hash);
    const socket = props.get(u.socket);
    const service = props.get(u.service);
    const appLoaded = !isProxied(d.manifest) || props.get(u.app)?.LoadState === "loaded";
    const socketUp = socket?.LoadState === "loaded" && socket.ActiveState === "active" && appLoaded;
    const serviceUp = service?.ActiveState === "active";
    try {
      if (socketUp) {
        // an agent killed between creating a proxied hash's units and removing the app's timer
        if (props.get(u.appTimer)?.LoadState === "loaded") await systemctl.stop([u.appTimer]);
        adopt(store, activator, d, serviceUp);
        report.adopted.push(d.hash);
      } else {
        await recreate(store, systemctl, activator, d, serviceUp, props);
        report.recreated.push(d.hash);
      }
    } catch (e) {
      log(`reconcile ${d.hash}: ${(e as Error).message}`);
      store.transition(d.hash, d.generation, "failed", "could not re-create units", String(e));
      report.failed.push(d.hash);
    }
  }
  log(
    `reconciled: ${report.adopted.length} adopted, ${report.recreated.length} re-created, ${report.failed.length} failed`,
  );
  return report;
}

function adopt(store: StateStore, activator: Activator, d: Deployment, serviceUp: boolean): void {
  if (d.state === "activating") {
    // The agent died between creating the units and seeing readiness: check again.
    store.event(d.hash, "adopted", "units found; readiness re-checked after agent restart");
    void activator.checkReadiness(d);
    return;
  }
  const state = serviceUp ? "ready" : "idle";
  if (state !== d.state) {
    store.transition(
      d.hash,
      d.generation,
      state,
      `adopted after agent restart (service ${serviceUp ? "up" : "down"})`,
    );
  } else {
    store.event(d.hash, "adopted", "units found running after agent restart");
  }
}

export async function recreate(
  store: StateStore,
  systemctl: Systemctl,
  activator: Activator,
  d: Deployment,
  serviceUp: boolean,
  props: Map<string, UnitProperties>,
): Promise<void> {
  const u = activator.units(d.hash);
  if (isProxied(d.manifest)) {
    // Whatever is left of its units (a crash between creating them): clear it all.
    const left = unitsOf(u, d.manifest).filter((n) => props.get(n)?.LoadState === "loaded");
    await systemctl.stop(left);
    await systemctl.resetFailed(left);
  } else {
    // A stray service without its socket (or a failed socket): clear it so the pair can be made again.
    if (serviceUp) await systemctl.stop([u.service]);
    await systemctl.resetFailed([u.socket, u.service]);
  }
  await activator.createUnits(d.path, u, d.manifest);
  if (d.state === "ready" || d.state === "activating") {
    store.event(
      d.hash,
      "recreated",
      "units re-created from the database (host rebooted, or the socket failed)",
    );
    void activator.checkReadiness(d);
  } else {
    store.transition(
      d.hash,
      d.generation,
      "idle",
      "socket re-created from the database; service starts on demand",
      null,
      d.state,
    );
  }
}
