import type { Manifest } from "../model/manifest.ts";
import type { ProxyHelpers } from "./proxy-helpers.ts";
import {
  bindProperties,
  programProperties,
  SERVICE_HARDENING,
  socketPairRun,
  type TransientUnitSpec,
  userProperties,
} from "./transient-unit.ts";
import type { HashUnits } from "./unit-names.ts";
import { formatUpstreamTarget, type UpstreamTarget } from "./wait-upstream.ts";

/**
 * The proxied socket modes (manifest `socket.type` unix or port), for programs that can't take a
 * listening fd. Three units per hash, the socket unchanged:
 *
 *   hashd-<hash>.socket        ListenStream=<socketDir>/<hash>.sock, as in the fd mode
 *   hashd-<hash>.service       systemd-socket-proxyd <upstream>; BindsTo= + After= the app
 *   hashd-<hash>-app.service   the program; PartOf= the proxy; ExecStartPost= waits for the upstream
 *
 * The socket triggers the proxy, whose start pulls the app in first; the app's start job ends only
 * when its upstream accepts a connection (ExecStartPost=hashd wait-upstream), so the proxy never
 * connects too early and clients wait in the socket's backlog. Stopping the proxy (idle stop)
 * stops the app (PartOf=); an app that dies takes the proxy down (BindsTo=), so the socket listens
 * again and the next connection starts both. The app unit stays loaded while inactive because the
 * proxy references it (systemd's GC keeps referenced units), checked on systemd 252.
 *
 * Both units run as the same DynamicUser name, which systemd maps to one uid while either runs:
 * the proxy can reach the app's 0700 runtime directory, nothing else can. That name is the hash's
 * (sharedUser), or, for a service with a state directory, its name's (service-identity.ts), which
 * the proxies of its other versions share too. The state directory and the credentials are the
 * program's alone.
 */
export interface ProxiedUnitSpec extends TransientUnitSpec {
  helpers: ProxyHelpers;
}

export function isProxied(manifest: Manifest): boolean {
  return manifest.socket.type !== "fd";
}

/**
 * Every unit of a hash: the socket + service pair, and in the proxied modes (unix, port) the
 * program's own unit and the timer that creates it (normally gone within the creating call).
 */
export function unitsOf(units: HashUnits, manifest: Manifest): string[] {
  return isProxied(manifest)
    ? [units.socket, units.service, units.app, units.appTimer]
    : [units.socket, units.service];
}

/**
 * The units whose journal holds a hash's own output (`hashd logs`, the error of a failed start):
 * the program's unit, and in the proxied modes the proxy's as well, whose journal alone says little.
 */
export function journalUnitsOf(units: HashUnits, manifest: Manifest): string | string[] {
  return isProxied(manifest) ? [units.app, units.service] : units.service;
}

/** Parent of each unix upstream, relative to /run (RuntimeDirectory= takes a relative path). */
export const UPSTREAM_RUNTIME_DIR = "hashd/upstream";

/**
 * systemd-run can only create a transient unit by starting it or a trigger of it. The app unit is
 * created behind a timer that never elapses, so creating it runs nothing; the timer is stopped
 * (and collected) once the proxy references the app.
 */
export const NEVER = "36500d";

/** Upper bound of concurrent connections through one proxy (systemd-socket-proxyd defaults to 256). */
export const PROXY_CONNECTIONS_MAX = 4096;

export function upstreamOf(units: HashUnits, manifest: Manifest): UpstreamTarget {
  const socket = manifest.socket;
  if (socket.type === "port") return { hostname: "127.0.0.1", port: socket.port };
  if (socket.type === "unix") return { unix: `/run/${UPSTREAM_RUNTIME_DIR}/${units.hash}/upstream.sock` };
  throw new Error(`socket type ${socket.type} is not proxied`);
}

/**
 * The dynamic user both units share. User names longer than 31 characters make the start fail
 * ("resources", checked on 252), so the name carries 25 of the hash's 32 characters (125 bits).
 */
export function sharedUser(hash: string): string {
  return `hashd-${hash.slice(0, 25)}`;
}

function unitUser(spec: TransientUnitSpec): string[] {
  return userProperties(spec, sharedUser(spec.units.hash));
}

/** Environment of the program: the manifest's, the agent's, then where to listen (wins). */
export function appEnvironment(spec: TransientUnitSpec): Record<string, string> {
  const { manifest, units } = spec;
  const upstream = upstreamOf(units, manifest);
  const listen: Record<string, string> =
    "unix" in upstream ? { HASHD_UPSTREAM: upstream.unix } : { PORT: String(upstream.port) };
  return { ...manifest.environment, ...spec.agentEnvironment, ...listen };
}

export function appProperties(spec: ProxiedUnitSpec): string[] {
  const { manifest, units } = spec;
  const upstream = upstreamOf(units, manifest);
  return [
    manifest.readiness.type === "notify" ? "Type=notify" : "Type=exec",
    ...(manifest.readiness.type === "notify" ? ["NotifyAccess=all"] : []),
    ...unitUser(spec),
    `TimeoutStartSec=${manifest.startTimeoutSec}s`,
    `TimeoutStopSec=${manifest.drainTimeoutSec}s`,
    "KillMode=mixed",
    "Restart=no",
    "StartLimitIntervalSec=0", // as for fd services (transient-unit.ts)
    `SyslogIdentifier=${manifest.name}`,
    `PartOf=${units.service}`,
    ...("unix" in upstream
      ? [`RuntimeDirectory=${UPSTREAM_RUNTIME_DIR}/${units.hash}`, "RuntimeDirectoryMode=0700"]
      : ["PrivateNetwork=yes"]),
    `ExecStartPost=${[...spec.helpers.waitUpstream, formatUpstreamTarget(upstream)].map(quoteExecArg).join(" ")}`,
    ...bindProperties(spec),
    ...programProperties(spec),
    ...SERVICE_HARDENING,
  ];
}

/**
 * The proxy needs no network of its own: it gets the listening socket from systemd and reaches the
 * upstream through a file (unix) or the loopback of the namespace it joins (port).
 */
export function proxyProperties(spec: ProxiedUnitSpec): string[] {
  const { manifest, units } = spec;
  const unix = manifest.socket.type === "unix";
  return [
    // exec, not notify: systemd-socket-proxyd 252 never sends READY=1. It accepts as soon as it
    // runs, and until then connections wait in the socket's backlog.
    "Type=exec",
    ...unitUser(spec),
    `TimeoutStartSec=${manifest.startTimeoutSec}s`,
    `TimeoutStopSec=${manifest.drainTimeoutSec}s`,
    "KillMode=mixed",
    "Restart=no",
    "StartLimitIntervalSec=0",
    `SyslogIdentifier=${manifest.name}-proxy`,
    `BindsTo=${units.app}`,
    `After=${units.app}`,
    "PrivateNetwork=yes",
    ...(unix ? [] : [`JoinsNamespaceOf=${units.app}`]),
    // 2 sockets + 2 pipes per connection (splice)
    `LimitNOFILE=${PROXY_CONNECTIONS_MAX * 4 + 64}`,
    ...SERVICE_HARDENING.filter((p) => !p.startsWith("RestrictAddressFamilies=")),
    unix ? "RestrictAddressFamilies=AF_UNIX" : "RestrictAddressFamilies=AF_UNIX AF_INET",
  ];
}

/** Step 1: the app unit, created behind its never-elapsing timer (nothing runs). */
export function appRunArgv(spec: ProxiedUnitSpec): string[] {
  const { units, manifest } = spec;
  return [
    "systemd-run",
    "--quiet",
    "--collect",
    `--unit=${units.app}`,
    `--description=hashd ${manifest.name} ${units.hash} (program)`,
    `--on-active=${NEVER}`,
    ...appProperties(spec).map((p) => `--property=${p}`),
    ...Object.entries(appEnvironment(spec)).map(([k, v]) => `--setenv=${k}=${v}`),
    "--",
    ...manifest.exec,
  ];
}

/** Step 2: the socket (started, listening) + proxy pair, in one call as in the fd mode. */
export function proxyRunArgv(spec: ProxiedUnitSpec): string[] {
  const { units, manifest } = spec;
  const upstream = upstreamOf(units, manifest);
  return [
    ...socketPairRun(units, manifest),
    ...proxyProperties(spec).map((p) => `--property=${p}`),
    "--",
    spec.helpers.socketProxyd,
    `--connections-max=${PROXY_CONNECTIONS_MAX}`,
    "unix" in upstream ? upstream.unix : `${upstream.hostname}:${upstream.port}`,
  ];
}

/**
 * One argv item of a command line that systemd-run parses (ExecStartPost=): quoted when it holds
 * anything but plain path characters; `$` is doubled so systemd does not expand it at exec time.
 */
export function quoteExecArg(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `"${arg.replace(/[\\"]/g, "\\$&").replace(/\$/g, "$$$$")}"`;
}
