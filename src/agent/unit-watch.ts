import type { Systemctl } from "../systemd/systemctl.ts";
import type { Activator } from "./activator.ts";
import type { Deployment } from "./state/deployment.ts";
import type { StateStore } from "./state/store.ts";

/**
 * Keeps `ready` and `idle` true to what systemd runs. A service wakes when its socket gets a
 * connection (from the ingress or from anyone on the host) and stops when it exits or is scaled to
 * zero; neither passes through the agent, so one `systemctl show` of every live service, on a
 * timer, catches both. It never creates or stops units: that is the activator's and reconcile's job.
 */
export async function syncServiceStates(
  store: StateStore,
  systemctl: Systemctl,
  activator: Activator,
  onChange: (d: Deployment) => void,
): Promise<number> {
  const candidates = store.list().filter((d) => d.state === "ready" || d.state === "idle");
  if (candidates.length === 0) return 0;
  const services = candidates.map((d) => activator.units(d.hash).service);
  const props = await systemctl.show(services, ["ActiveState"]);
  let changed = 0;
  for (const d of candidates) {
    const active = props.get(activator.units(d.hash).service)?.ActiveState;
    let next: Deployment | undefined;
    if (d.state === "idle" && active === "active") {
      next = store.transition(d.hash, d.generation, "ready", "service started by a connection", null, "idle");
    } else if (d.state === "ready" && (active === "inactive" || active === "failed")) {
      next = store.transition(
        d.hash,
        d.generation,
        "idle",
        `service ${active}; socket listens`,
        null,
        "ready",
      );
    }
    if (next) {
      changed++;
      onChange(next);
    }
  }
  return changed;
}
