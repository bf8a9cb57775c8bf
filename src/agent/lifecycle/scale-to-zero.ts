import { type Deployment, LIVE_STATES } from "../../model/deployment.ts";
import type { Systemctl } from "../../systemd/systemctl.ts";
import type { StateStore } from "../state/store.ts";
import type { Activator } from "./activator.ts";

/**
 * The idle scaler as this policy drives it (ingress/idle-scaler.ts IdleScaler, which lifecycle
 * does not import: the two share a rank).
 */
export interface IdleRegistry {
  register(hash: string, idleStopSec: number): void;
  unregister(hash: string): void;
}

export interface ScaleToZeroDeps {
  store: StateStore;
  systemctl: Pick<Systemctl, "stop">;
  activator: Pick<Activator, "isBusy" | "units">;
  /** a deployment's new row, as every change of state is passed on (route table, report) */
  onChange: (d: Deployment) => void;
}

/**
 * Scale to zero on this host: which hashes the idle scaler may stop, and what its stop does. The
 * scaler decides when (no request in flight and no live hold for idleStopSec, ingress/idle-scaler.ts);
 * this says for which hashes and how long, and carries the stop out.
 */
export class ScaleToZeroPolicy {
  constructor(private readonly deps: ScaleToZeroDeps) {}

  /**
   * Every live hash (LIVE_STATES) is tracked with its manifest's idleStopSec (0: never stopped), so
   * one re-adopted at start, activated or revived is; any other (failed, retired) is not. Called
   * with every row at start and with every changed row after.
   */
  follow(registry: IdleRegistry, d: Deployment): void {
    if (LIVE_STATES.has(d.state)) registry.register(d.hash, d.manifest.idleStopSec);
    else registry.unregister(d.hash);
  }

  /**
   * The idle scaler's stop: the service goes, its socket stays (the next connection starts it
   * again); a ready hash is then idle. A hash that is starting or stopping is left alone.
   */
  readonly stopService = async (hash: string): Promise<void> => {
    const { store, systemctl, activator, onChange } = this.deps;
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
  };
}
