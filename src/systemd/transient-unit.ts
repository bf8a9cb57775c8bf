import type { Manifest } from "../model/manifest.ts";
import {
  credentialProperties,
  stateDirectoryOf,
  stateUser,
  type UnitCredential,
} from "./service-identity.ts";
import type { HashUnits } from "./unit-names.ts";

/** What the agent knows about a hash when it asks systemd for its socket + service pair. */
export interface TransientUnitSpec {
  units: HashUnits;
  storePath: string;
  manifest: Manifest;
  /** run as this user instead of a DynamicUser (for services that need a fixed uid) */
  user?: string;
  /** extra environment the agent adds (HASHD_HASH, HASHD_ZONE, ...) */
  agentEnvironment: Record<string, string>;
  /** files of the host the program sees, read-only, at another path (its hold token) */
  bindReadOnly?: readonly { source: string; target: string }[];
  /** the files of the credentials its manifest names, as the agent checked them (agent/lifecycle/credentials.ts) */
  credentials?: readonly UnitCredential[];
}

/** BindReadOnlyPaths= for the program's unit; the agent's own paths hold no spaces or colons. */
export function bindProperties(spec: TransientUnitSpec): string[] {
  return (spec.bindReadOnly ?? []).map(({ source, target }) => `BindReadOnlyPaths=${source}:${target}`);
}

/**
 * Who the program's units run as: the configured user; else, for a service with a state directory,
 * the dynamic user of its name (shared by its versions, service-identity.ts); else a dynamic user
 * of the hash (`perHash`, or systemd's own, named after the unit).
 */
export function userProperties(spec: TransientUnitSpec, perHash?: string): string[] {
  if (spec.user) return [`User=${spec.user}`];
  if (spec.manifest.stateDirectory) return ["DynamicUser=yes", `User=${stateUser(spec.manifest.name)}`];
  return perHash ? ["DynamicUser=yes", `User=${perHash}`] : ["DynamicUser=yes"];
}

/** What only the program's unit gets: its state directory (by name) and its credentials. */
export function programProperties(spec: TransientUnitSpec): string[] {
  return [
    ...(spec.manifest.stateDirectory
      ? [`StateDirectory=${stateDirectoryOf(spec.manifest.name)}`, "StateDirectoryMode=0700"]
      : []),
    ...credentialProperties(spec.credentials ?? []),
  ];
}

/**
 * Sandboxing every generated service gets (systemd.exec(5)). Services are immutable closures that
 * keep their state elsewhere, so the file system is read-only to them (but for the state directory
 * of their name, when the manifest asks for one: programProperties) and nothing can gain
 * privileges. MemoryDenyWriteExecute is left out: JIT runtimes (node, bun, the JVM) need W+X pages.
 */
export const SERVICE_HARDENING: readonly string[] = [
  "ProtectSystem=strict",
  "ProtectHome=yes",
  "PrivateTmp=yes",
  "PrivateDevices=yes",
  "NoNewPrivileges=yes",
  "ProtectKernelTunables=yes",
  "ProtectKernelModules=yes",
  "ProtectKernelLogs=yes",
  "ProtectControlGroups=yes",
  "ProtectClock=yes",
  "ProtectHostname=yes",
  "RestrictSUIDSGID=yes",
  "RestrictRealtime=yes",
  "RestrictNamespaces=yes",
  "LockPersonality=yes",
  "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
  "SystemCallArchitectures=native",
  "CapabilityBoundingSet=",
  "UMask=0077",
];

/**
 * The socket half. Accept=no hands the one listening socket to the service; while the service is
 * starting, the kernel backlog holds connections, so none is refused. The trigger limit is raised
 * because scale-to-zero wakes a socket far more often than the default 20 per 2 s that would put it
 * into a failed state (systemd.socket(5), TriggerLimitIntervalSec=).
 */
export function socketProperties(units: HashUnits): string[] {
  return [
    `ListenStream=${units.socketPath}`,
    "SocketMode=0660",
    "DirectoryMode=0755",
    "Accept=no",
    "Backlog=4096",
    "RemoveOnStop=yes",
    "TriggerLimitIntervalSec=1s",
    "TriggerLimitBurst=10000",
  ];
}

export function serviceProperties(spec: TransientUnitSpec): string[] {
  const { manifest } = spec;
  const props = [
    manifest.readiness.type === "notify" ? "Type=notify" : "Type=exec",
    // Programs in Bun or shell report through the systemd-notify CLI, a child process.
    ...(manifest.readiness.type === "notify" ? ["NotifyAccess=all"] : []),
    ...userProperties(spec),
    `TimeoutStartSec=${manifest.startTimeoutSec}s`,
    `TimeoutStopSec=${manifest.drainTimeoutSec}s`,
    // SIGTERM to the main process only, so it can drain; the rest of the cgroup is killed after it.
    "KillMode=mixed",
    "Restart=no",
    // Every start comes from a connection to the socket (or the agent), never from a restart loop.
    // The default limit (5 starts per 10 s) would fail a hash that scales to zero and wakes often,
    // and a failed start-limit also fails its socket (systemd.unit(5), StartLimitIntervalSec=).
    "StartLimitIntervalSec=0",
    `SyslogIdentifier=${manifest.name}`,
    ...bindProperties(spec),
    ...programProperties(spec),
    ...SERVICE_HARDENING,
  ];
  return props;
}

/**
 * argv for `systemd-run`: one call creates the transient socket + service pair and starts the
 * socket, with no daemon-reload (whose cost grows with the number of units). Every value is a
 * separate argv item; the manifest was validated to hold no newlines or NULs, and systemd-run passes
 * the command to systemd as a string array over D-Bus, so nothing is parsed as unit-file syntax.
 */
export function systemdRunArgv(spec: TransientUnitSpec): string[] {
  const { units, manifest } = spec;
  const env = { ...manifest.environment, ...spec.agentEnvironment };
  return [
    ...socketPairRun(units, manifest),
    ...serviceProperties(spec).map((p) => `--property=${p}`),
    ...Object.entries(env).map(([k, v]) => `--setenv=${k}=${v}`),
    "--",
    ...manifest.exec,
  ];
}

/** The head of a `systemd-run` that creates a hash's socket (started, listening) and its service. */
export function socketPairRun(units: HashUnits, manifest: Manifest): string[] {
  return [
    "systemd-run",
    "--quiet",
    "--collect",
    `--unit=${units.base}`,
    `--description=hashd ${manifest.name} ${units.hash}`,
    ...socketProperties(units).map((p) => `--socket-property=${p}`),
  ];
}
