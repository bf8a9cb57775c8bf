import { HashdError } from "../lib/errors.ts";

/** A deploy target, `[user@]host[:port]`, checked before anything runs. */
export interface Target {
  /** as the user wrote it; the name hosts are reported under */
  spec: string;
  user?: string;
  host: string;
  port?: number;
}

/** POSIX-portable user names (useradd's default NAME_REGEX, plus upper case). */
const USER = /^[A-Za-z_][A-Za-z0-9_-]{0,31}$/;
/** DNS names (RFC 1123 labels) and IPv4 addresses: nothing an ssh or a shell could read as syntax. */
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Parses `[user@]host[:port]`. The host must be a DNS name or an IPv4 address: it never starts
 * with `-` (ssh would read an option) and holds no `%`, `/`, quote or space. IPv6 literals are
 * refused: `ssh-ng://` URLs with brackets are parsed differently across Nix versions.
 */
export function parseTarget(value: string): Target {
  const bad = (why: string) =>
    new HashdError(
      "bad_request",
      `bad target ${JSON.stringify(value)}: ${why} (expected [user@]host[:port], e.g. root@web1 or root@10.0.0.5:2222)`,
    );
  let rest = value;
  let user: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER.test(user)) throw bad(`invalid user name ${JSON.stringify(user)}`);
  }
  let port: number | undefined;
  const colon = rest.indexOf(":");
  if (colon >= 0) {
    const p = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!/^[0-9]{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) {
      throw bad(`invalid port ${JSON.stringify(p)}`);
    }
    port = Number(p);
  }
  const host = rest;
  if (host.length === 0) throw bad("no host name");
  if (host.length > 253 || !host.split(".").every((l) => LABEL.test(l))) {
    throw bad(`invalid host name ${JSON.stringify(host)}`);
  }
  return {
    spec: value,
    host,
    ...(user !== undefined ? { user } : {}),
    ...(port !== undefined ? { port } : {}),
  };
}

/** `--to a,b,c`: at least one target, each once. */
export function parseTargets(list: string): Target[] {
  const specs = list.split(",").map((s) => s.trim());
  if (list.trim() === "" || specs.some((s) => s === "")) {
    throw new HashdError(
      "bad_request",
      `--to needs a comma-separated list of [user@]host[:port], not ${JSON.stringify(list)}`,
    );
  }
  const targets = specs.map(parseTarget);
  const seen = new Set<string>();
  for (const t of targets) {
    const key = destination(t) + (t.port ? `:${t.port}` : "");
    if (seen.has(key)) throw new HashdError("bad_request", `target ${t.spec} is given twice in --to`);
    seen.add(key);
  }
  return targets;
}

/** `user@host` as ssh and ssh-ng:// take it (the port travels separately, as `-p`). */
export function destination(t: Target): string {
  return t.user ? `${t.user}@${t.host}` : t.host;
}

export interface SshOptions {
  /** seconds before ssh gives up connecting (ConnectTimeout) */
  connectTimeoutSec: number;
  /** a private directory for connection-sharing sockets (see ssh-mux.ts); none: one connection per call */
  controlDir?: string;
}

export const DEFAULT_SSH: SshOptions = { connectTimeoutSec: 10 };

/**
 * Options shared by our ssh calls and by Nix's (NIX_SSHOPTS): never prompt (BatchMode: a missing
 * key or unknown host key is an error, not a hung deploy), bounded connect, and a dead peer is
 * noticed within 30 s during a long activation.
 */
export function sshOptions(t: Target, o: SshOptions = DEFAULT_SSH): string[] {
  return [
    "-o",
    "BatchMode=yes",
    "-o",
    `ConnectTimeout=${o.connectTimeoutSec}`,
    "-o",
    "ServerAliveInterval=10",
    "-o",
    "ServerAliveCountMax=3",
    ...(o.controlDir
      ? ["-o", "ControlMaster=auto", "-o", `ControlPath=${o.controlDir}/%C`, "-o", "ControlPersist=30"]
      : []),
    ...(t.port ? ["-p", String(t.port)] : []),
  ];
}

/**
 * argv of `ssh <target> <remote argv>`. ssh hands the remote side one command string that the
 * login shell splits again, so each remote argument is single-quoted here (after the callers
 * validated it): a store path may hold `?` or `=`, which a shell would otherwise glob or read.
 */
export function sshArgv(t: Target, remote: string[], o: SshOptions = DEFAULT_SSH): string[] {
  if (remote.length === 0) throw new Error("sshArgv: empty remote command");
  return ["ssh", ...sshOptions(t, o), "-T", "--", destination(t), ...remote.map(shellQuote)];
}

/** NIX_SSHOPTS for `nix copy --to ssh-ng://`: Nix splits it on white space, which none of ours hold. */
export function nixSshOpts(t: Target, o: SshOptions = DEFAULT_SSH, inherited = ""): string {
  return [inherited.trim(), ...sshOptions(t, o)].filter(Boolean).join(" ");
}

/** POSIX shell single quotes: nothing inside is special except the quote itself. */
export function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
