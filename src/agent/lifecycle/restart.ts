import { HashdError } from "../../lib/errors.ts";
import { type Deployment, LIVE_STATES } from "../../model/deployment.ts";
import type { Manifest } from "../../model/manifest.ts";
import { isProxied } from "../../systemd/proxied-unit.ts";
import type { Systemctl } from "../../systemd/systemctl.ts";
import type { HashUnits } from "../../systemd/unit-names.ts";
import type { StateStore } from "../state/store.ts";
import { startAndWaitReady, type UnixGet } from "./readiness.ts";

/**
 * What a restart needs of the ingress, which only the agent's wiring holds (ingress/ and lifecycle/
 * share a rank, so this names the parts it uses): the per-hash stop gate the idle scaler closes
 * (ingress/stop-gate.ts StopGate), the in-flight counts (ingress/inflight.ts InFlight), and the
 * ingress's pooled connections to the hash (Ingress.dropIdleUpstreams).
 */
export interface RestartDrain {
  gate: { close(hash: string): void; open(hash: string): void; isClosed(hash: string): boolean };
  inflight: { count(hash: string): number };
  dropIdleUpstreams(hash: string): void;
}

export interface RestartResult {
  deployment: Deployment;
  /** false when the program was not running (scaled to zero): its next start reads the files anyway */
  restarted: boolean;
  /** requests in flight through the ingress when the gate closed, which the restart waited for */
  drained: number;
  /** requests still in flight when drainTimeoutSec ran out (the stop gave them drainTimeoutSec more) */
  cut: number;
  /** how long new requests waited at the gate, in ms */
  heldMs: number;
}

export interface RestartContext {
  store: StateStore;
  systemctl: Systemctl;
  units: (hash: string) => HashUnits;
  /** checks the hash's credential files again (lifecycle/credentials.ts); throws missing_credential */
  credentials: (manifest: Manifest) => Promise<unknown>;
  /** runs the restart with the hash busy (Activator.whileStopping): the loops leave it alone */
  whileBusy: <T>(hash: string, work: () => Promise<T>) => Promise<T>;
  onChange?: (d: Deployment) => void;
  log: (msg: string) => void;
  /** GET through the hash's socket for http readiness (a fake in unit tests) */
  get?: UnixGet;
  pollMs?: number;
}

/**
 * `hashd restart <hash|alias>`: the program is stopped and started again, so that it reads its
 * credential files (rotation) and anything else it reads at start; its socket stays, so no
 * connection is refused. It drains as the idle stop does (ingress/idle-scaler.ts): the hash's stop
 * gate closes, so new requests wait in the ingress; the requests in flight finish (up to the
 * manifest's drainTimeoutSec); the ingress's pooled connections to the old process are dropped;
 * the service is stopped (its program gets SIGTERM and drainTimeoutSec, KillMode=mixed), started,
 * and its readiness rule checked; then the gate opens and the waiting requests go to the new
 * process. Holds are not waited for: a restart is asked for by hand.
 *
 * The credential files are checked first, so a restart with a file gone refuses with
 * missing_credential and touches nothing. A program that fails to start again fails the hash, as
 * a failed activation does (its units are stopped: a socket whose program cannot start would
 * only hold connections).
 */
export async function restartHash(
  ctx: RestartContext,
  hash: string,
  drain: RestartDrain,
): Promise<RestartResult> {
  const d = ctx.store.get(hash);
  if (!d) throw new HashdError("not_found", `hash ${hash} is not known on this host`);
  if (d.state === "activating")
    throw new HashdError("conflict", `hash ${hash} is still starting: restart it once it is ready`);
  if (!LIVE_STATES.has(d.state)) {
    throw new HashdError(
      "conflict",
      `hash ${hash} is ${d.state}: nothing runs to restart (hashd activate ${d.path} starts it again)`,
    );
  }
  await ctx.credentials(d.manifest);
  return ctx.whileBusy(hash, () => restartNow(ctx, d, drain));
}

async function restartNow(ctx: RestartContext, d: Deployment, drain: RestartDrain): Promise<RestartResult> {
  const { store, systemctl } = ctx;
  const pollMs = ctx.pollMs ?? 10;
  const units = ctx.units(d.hash);
  const drainMs = d.manifest.drainTimeoutSec * 1000;
  // An idle stop under way holds the gate: it ends within the stop's own time-out.
  const busyUntil = Date.now() + drainMs + 30_000;
  while (drain.gate.isClosed(d.hash)) {
    if (Date.now() > busyUntil)
      throw new HashdError("conflict", `hash ${d.hash}: an idle stop is still under way; try again`);
    await Bun.sleep(pollMs);
  }
  const running = (await systemctl.show([units.service], ["ActiveState"])).get(units.service)?.ActiveState;
  if (running !== "active") {
    store.event(d.hash, "restart", "restart asked: not running (idle); its next start reads the files");
    return { deployment: store.get(d.hash) ?? d, restarted: false, drained: 0, cut: 0, heldMs: 0 };
  }

  drain.gate.close(d.hash);
  const heldAt = Date.now();
  try {
    const drained = drain.inflight.count(d.hash);
    while (drain.inflight.count(d.hash) > 0 && Date.now() - heldAt < drainMs) await Bun.sleep(pollMs);
    const cut = drain.inflight.count(d.hash);
    // Connections the ingress keeps open to the old process would meet it gone.
    drain.dropIdleUpstreams(d.hash);
    await systemctl.stop([units.service], drainMs + 30_000);
    const timeoutMs = d.manifest.startTimeoutSec * 1000;
    const r = await startAndWaitReady(systemctl, units, d.manifest, timeoutMs, ctx.get);
    if (!r.ok) {
      const proxied = isProxied(d.manifest);
      const logged = proxied ? [units.app, units.service] : [units.service];
      const journal = await systemctl.journal(logged, 20);
      const all = proxied ? [units.socket, units.service, units.app] : [units.socket, units.service];
      await systemctl.stop(all).catch(() => {});
      const error = `${r.reason}${journal ? `\n--- last lines of ${logged.join(", ")} ---\n${journal}` : ""}`;
      const failed = store.transition(d.hash, d.generation, "failed", `restart: ${r.reason}`, error);
      if (failed) ctx.onChange?.(failed);
      throw new HashdError("systemd_failed", `hash ${d.hash} (${d.name}) failed to start again: ${error}`, {
        deployment: failed ?? d,
      });
    }
    const heldMs = Date.now() - heldAt;
    const note = cut > 0 ? `, ${cut} cut after ${d.manifest.drainTimeoutSec} s` : "";
    store.event(
      d.hash,
      "restart",
      `restarted by hand: ${drained} request(s) in flight drained first${note}; new requests held ${heldMs} ms`,
    );
    ctx.log(`restarted ${d.hash} (${d.name})`);
    let deployment = store.get(d.hash) ?? d;
    if (deployment.state === "idle") {
      const next = store.transition(d.hash, d.generation, "ready", "restarted", null, "idle");
      if (next) {
        ctx.onChange?.(next);
        deployment = next;
      }
    }
    return { deployment, restarted: true, drained, cut, heldMs };
  } finally {
    drain.gate.open(d.hash);
  }
}
