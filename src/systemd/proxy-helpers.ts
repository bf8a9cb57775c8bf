import { existsSync, mkdirSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { dirname } from "node:path";
import { HashdError } from "../lib/errors.ts";
import { WAIT_UPSTREAM_COMMAND } from "./wait-upstream.ts";

/** The two programs the proxied units run besides the service's own. */
export interface ProxyHelpers {
  /** systemd-socket-proxyd, the socket unit's service in the unix and port modes */
  socketProxyd: string;
  /** argv prefix of `hashd wait-upstream` (the agent's own binary), the app unit's ExecStartPost= */
  waitUpstream: string[];
}

/** Overrides the search for systemd-socket-proxyd (a path to the binary). */
export const SOCKET_PROXYD_ENV = "HASHD_SOCKET_PROXYD";

/**
 * Where systemd-socket-proxyd lives, in the order tried. NixOS keeps it in the systemd package
 * (${systemd}/lib/systemd/), reached through the stable /run/current-system/systemd link or next to
 * the `systemctl` in PATH; Debian and most others ship it in /usr/lib/systemd (or /lib/systemd).
 */
export function socketProxydCandidates(
  env: string | undefined,
  systemctlRealPath: string | undefined,
): string[] {
  const out: string[] = [];
  if (env) out.push(env);
  out.push(
    "/run/current-system/systemd/lib/systemd/systemd-socket-proxyd",
    "/usr/lib/systemd/systemd-socket-proxyd",
    "/lib/systemd/systemd-socket-proxyd",
  );
  // <prefix>/bin/systemctl -> <prefix>/lib/systemd/systemd-socket-proxyd
  if (systemctlRealPath) out.push(`${dirname(dirname(systemctlRealPath))}/lib/systemd/systemd-socket-proxyd`);
  return out;
}

export function findSocketProxyd(
  env: string | undefined = process.env[SOCKET_PROXYD_ENV],
  exists: (path: string) => boolean = existsSync,
  systemctlRealPath: string | undefined = realSystemctl(),
): string {
  const candidates = socketProxydCandidates(env, systemctlRealPath);
  // An explicit override that is wrong is an error, not a reason to fall back silently.
  if (env && !exists(env)) {
    throw new HashdError("systemd_failed", `${SOCKET_PROXYD_ENV}=${env}: no such file`);
  }
  const found = candidates.find((p) => exists(p));
  if (!found) {
    throw new HashdError(
      "systemd_failed",
      `systemd-socket-proxyd not found (needed by socket modes unix and port); looked in ${candidates.join(", ")}; set ${SOCKET_PROXYD_ENV} to its path`,
    );
  }
  return found;
}

function realSystemctl(): string | undefined {
  const p = Bun.which("systemctl");
  try {
    return p ? realpathSync(p) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * argv prefix that runs the agent's own `wait-upstream` through `link` (a symlink to the agent's
 * executable). A compiled binary is the program itself; under `bun src/cli.ts` the link is bun and
 * the script follows.
 */
export function waitUpstreamArgv(link: string, main: string = Bun.main): string[] {
  const compiled = main.startsWith("/$bunfs/") || main.startsWith("B:/~BUN/");
  return compiled ? [link, WAIT_UPSTREAM_COMMAND] : [link, main, WAIT_UPSTREAM_COMMAND];
}

/**
 * Resolves the helpers and points stable symlinks in `dir` (<runtimeDir>/bin) at them. Units live
 * until a reboot and name these links, not the targets: after an upgrade of the agent or of systemd
 * (on NixOS, new store paths) and a nix GC of the old ones, a unit that starts again still finds
 * current programs. Called once per agent process (the links are refreshed at each agent start).
 */
export function installProxyHelpers(dir: string, socketProxyd = findSocketProxyd()): ProxyHelpers {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const links = { hashd: process.execPath, "systemd-socket-proxyd": socketProxyd };
  for (const [name, target] of Object.entries(links)) pointLink(`${dir}/${name}`, target);
  return { socketProxyd: `${dir}/systemd-socket-proxyd`, waitUpstream: waitUpstreamArgv(`${dir}/hashd`) };
}

/** Atomically (rename over) makes `link` a symlink to `target`, unless it already is one. */
function pointLink(link: string, target: string): void {
  try {
    if (readlinkSync(link) === target) return;
  } catch {}
  const tmp = `${link}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}
