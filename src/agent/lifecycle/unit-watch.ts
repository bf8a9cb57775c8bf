import type { Deployment } from "../../model/deployment.ts";
import { unitsOf } from "../../systemd/proxied-unit.ts";
import type { Systemctl } from "../../systemd/systemctl.ts";
import type { StateStore } from "../state/store.ts";
import type { Activator } from "./activator.ts";
import { recreate } from "./reconcile.ts";

/**
 * Keeps `ready` and `idle` true to what systemd runs. A service wakes when its socket gets a
 * connection (from the ingress or from anyone on the host) and stops when it exits or is scaled to
 * zero; neither passes through the agent, so one `systemctl show` of every live unit, on a timer,
 * catches both. A socket that is gone or failed (removed by hand, or failed by a limit) is
 * re-created as at start, so a live hash never stays unreachable.
 */
export async function syncServiceStates(
  store: StateStore,
  systemctl: Systemctl,
  activator: Activator,
  onChange: (d: Deployment) => void,
): Promise<number> {
  const candidates = store.list().filter((d) => d.state === "ready" || d.state === "idle");
  if (candidates.length === 0) return 0;
  const names = candidates.flatMap((d) => unitsOf(activator.units(d.hash), d.manifest));
  const props = await systemctl.show(names, ["LoadState", "ActiveState"]);
  let changed = 0;
  for (const d of candidates) {
    // A stop, restart or activation under way changes the units itself, and says what they are
    // when it ends; a snapshot taken in between (a restart's stopped service) would be wrong.
    if (activator.isBusy(d.hash)) continue;
    const units = activator.units(d.hash);
    const socket = props.get(units.socket);
    if (socket?.ActiveState !== "active") {
      const current = store.get(d.hash);
      if (current?.state !== d.state || current.generation !== d.generation) continue;
      store.event(
        d.hash,
        "socket-lost",
        `socket ${socket?.LoadState ?? "?"}/${socket?.ActiveState ?? "?"}; re-creating`,
      );
      try {
        await recreate(
          store,
          systemctl,
          activator,
          d,
          props.get(units.service)?.ActiveState === "active",
          props,
        );
      } catch (e) {
        // as at start (reconcile.ts): the hash fails with the reason (a credential file gone, a
        // refused unit), and the other hashes of this round are still looked at
        const failed = store.transition(
          d.hash,
          d.generation,
          "failed",
          "could not re-create units",
          String(e),
        );
        if (failed) onChange(failed);
      }
      changed++;
      continue;
    }
    const active = props.get(units.service)?.ActiveState;
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
