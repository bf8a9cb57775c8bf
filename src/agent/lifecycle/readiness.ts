import { exec } from "../../lib/exec.ts";
import type { Manifest } from "../../model/manifest.ts";
import { isProxied } from "../../systemd/proxied-unit.ts";
import type { Systemctl } from "../../systemd/systemctl.ts";
import type { HashUnits } from "../../systemd/unit-names.ts";

export type ReadinessResult = { ok: true } | { ok: false; reason: string; timedOut: boolean };

/** One HTTP GET through a hash's unix socket; resolves to the status code or an error text. */
export type UnixGet = (socketPath: string, path: string, timeoutMs: number) => Promise<number | string>;

export const unixGet: UnixGet = async (socketPath, path, timeoutMs) => {
  try {
    const r = await fetch(`http://localhost${path}`, {
      unix: socketPath,
      signal: AbortSignal.timeout(timeoutMs),
      headers: { "user-agent": "hashd-readiness" },
    });
    await r.body?.cancel();
    return r.status;
  } catch (e) {
    return (e as Error).message;
  }
};

const FAILED_STATES = new Set(["failed", "inactive"]);

/**
 * Starts the service of a hash and waits until its readiness rule holds (manifest `readiness`):
 * - notify: `systemctl start` returns when the unit sent READY=1 (Type=notify).
 * - accept: the program takes a probe connection off the listening socket. A connect alone
 *   proves nothing (the kernel queues it in the backlog systemd listens with), so the probe is held
 *   open until the socket's accept queue (ss Recv-Q) is empty, i.e. the program called accept().
 * - http: a GET of the path through the hash's socket answers 2xx.
 *
 * In the proxied modes (unix, port) the service is systemd-socket-proxyd, whose start pulls in the
 * program's unit first and completes only after it: the program's READY=1 (notify), then its
 * upstream accepting a connection (the app unit's ExecStartPost=, every rule), then the proxy's
 * exec. So notify and accept hold once the start returns; http still GETs through the proxy.
 */
export async function startAndWaitReady(
  systemctl: Systemctl,
  units: HashUnits,
  manifest: Manifest,
  timeoutMs: number,
  get: UnixGet = unixGet,
): Promise<ReadinessResult> {
  const deadline = Date.now() + timeoutMs;
  const started = await systemctl.start(units.service, timeoutMs);
  if (!started.ok) {
    return started.timedOut
      ? { ok: false, timedOut: true, reason: `not ready within ${Math.round(timeoutMs / 1000)} s` }
      : { ok: false, timedOut: false, reason: `start failed: ${started.error}` };
  }
  const readiness = manifest.readiness;
  if (readiness.type === "notify") return { ok: true };
  if (readiness.type === "accept" && isProxied(manifest)) return { ok: true };
  if (readiness.type === "accept") return waitAccepted(systemctl, units, deadline);

  let delay = 10;
  let last = "no answer yet";
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      return {
        ok: false,
        timedOut: true,
        reason: `GET ${readiness.path} not 2xx within timeout (last: ${last})`,
      };
    }
    const status = await get(units.socketPath, readiness.path, Math.min(2000, remaining));
    if (typeof status === "number" && status >= 200 && status < 300) return { ok: true };
    last = typeof status === "number" ? `HTTP ${status}` : status;
    const running = await checkRunning(systemctl, units);
    if (!running.ok) return running;
    await Bun.sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    delay = Math.min(delay * 2, 250);
  }
}

async function waitAccepted(
  systemctl: Systemctl,
  units: HashUnits,
  deadline: number,
): Promise<ReadinessResult> {
  let probe: Awaited<ReturnType<typeof Bun.connect>>;
  try {
    probe = await Bun.connect({ unix: units.socketPath, socket: { data() {} } });
  } catch (e) {
    return {
      ok: false,
      timedOut: false,
      reason: `cannot connect to ${units.socketPath}: ${(e as Error).message}`,
    };
  }
  try {
    let delay = 5;
    for (;;) {
      if ((await acceptQueueLength(units.socketPath)) === 0) return { ok: true };
      const running = await checkRunning(systemctl, units);
      if (!running.ok) return running;
      if (Date.now() > deadline)
        return { ok: false, timedOut: true, reason: "the program never accepted a connection" };
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  } finally {
    probe.end();
  }
}

/** Connections waiting in a listening unix socket's accept queue (`ss` Recv-Q), or -1 if unknown. */
export async function acceptQueueLength(socketPath: string): Promise<number> {
  const r = await exec(["ss", "-xlnH", "src", socketPath], { timeoutMs: 5000 });
  const fields = r.stdout.trim().split(/\s+/);
  return r.code === 0 && fields[1] === "LISTEN" ? Number(fields[2]) : -1;
}

async function checkRunning(systemctl: Systemctl, units: HashUnits): Promise<ReadinessResult> {
  const props = (await systemctl.show([units.service], ["ActiveState", "SubState", "Result"])).get(
    units.service,
  );
  const active = props?.ActiveState ?? "unknown";
  if (FAILED_STATES.has(active)) {
    return {
      ok: false,
      timedOut: false,
      reason: `service ${active} (${props?.Result ?? "?"}) right after start`,
    };
  }
  return { ok: true };
}
