import { HashdError } from "../lib/errors.ts";
import { type Exec, type ExecResult, lastLine } from "../lib/exec.ts";
import { DEFAULT_SSH, type SshOptions, sshArgv, type Target } from "./target.ts";

/** ssh's own failures (can't connect, auth refused, connection lost) exit with 255: ssh(1). */
const SSH_FAILED = 255;

/**
 * A host's hashd CLI reached over ssh. Commands run with --json, so the remote prints the same
 * object its control API answers, or `{error: {code, message}}`, which becomes the same HashdError
 * here: a remote failure keeps its code (and so its exit code) across ssh.
 */
export class RemoteHashd {
  constructor(
    readonly target: Target,
    private readonly exec: Exec,
    private readonly ssh: SshOptions = DEFAULT_SSH,
  ) {}

  /** Runs argv on the host; ssh-level failures are thrown as `unavailable`, naming the host. */
  async run(remote: string[], timeoutMs: number): Promise<ExecResult> {
    const r = await this.exec(sshArgv(this.target, remote, this.ssh), { timeoutMs });
    if (r.timedOut) {
      throw new HashdError(
        "timeout",
        `${this.target.spec}: \`${remote.join(" ")}\` gave no answer within ${Math.round(timeoutMs / 1000)} s`,
      );
    }
    if (r.code === SSH_FAILED) {
      throw new HashdError("unavailable", `cannot reach ${this.target.spec}: ${sshReason(r.stderr)}`);
    }
    return r;
  }

  /** `nix-store --check-validity`: is the path in the host's store? */
  async isValid(path: string, timeoutMs = 30_000): Promise<boolean> {
    const r = await this.run(["nix-store", "--check-validity", path], timeoutMs);
    if (r.code === 0) return true;
    if (r.code === 1) return false;
    throw new HashdError(
      r.code === 127 ? "not_found" : "nix_failed",
      `${this.target.spec}: nix-store --check-validity exited ${r.code}: ${lastLine(r.stderr)}`,
    );
  }

  /** `hashd <args> --json` on the host, parsed; its error JSON is rethrown as a HashdError. */
  async hashdJson<T>(args: string[], timeoutMs = 60_000): Promise<T> {
    const r = await this.run(["hashd", ...args, "--json"], timeoutMs);
    const json = tryJson(r.stdout);
    if (r.code === 0) {
      if (json === undefined) {
        throw new HashdError("internal", `${this.target.spec}: hashd ${args[0]} printed no JSON`);
      }
      return json as T;
    }
    if (json && typeof json === "object" && "error" in json) throw HashdError.fromJSON(json, 500);
    if (r.code === 127) {
      throw new HashdError(
        "not_found",
        `${this.target.spec} has no hashd on root's PATH (${lastLine(r.stderr)})`,
      );
    }
    const unknown = /unknown command "([^"]+)"/.exec(r.stderr);
    if (r.code === 1 && unknown) {
      throw new HashdError(
        "not_found",
        `the hashd on ${this.target.spec} has no \`${unknown[1]}\` command (it needs a hashd that has \`hashd ${args.join(" ")}\`)`,
        { missing: `hashd ${unknown[1]}` },
      );
    }
    throw new HashdError(
      "internal",
      `${this.target.spec}: hashd ${args[0]} exited ${r.code}: ${lastLine(r.stderr) || "no output"}`,
    );
  }
}

function tryJson(text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The line of ssh's stderr that says why (ssh prints warnings before it). */
export function sshReason(stderr: string): string {
  const lines = stderr
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/^Warning: Permanently added/.test(l));
  return lines[lines.length - 1] ?? "ssh failed";
}

/** Nix's copy failures that are really ssh failures: the target is unreachable, not refusing. */
const UNREACHABLE =
  /Could not resolve hostname|Connection refused|Connection timed out|No route to host|Network is unreachable|Permission denied \(|Host key verification failed|Connection closed by|cannot connect to|failed to start SSH connection|Broken pipe|Connection reset/i;

/** Maps a failed `nix copy --to ssh-ng://` to a cause: unreachable host, refused signature, or Nix. */
export function copyFailure(target: Target, path: string, r: ExecResult, timeoutMs: number): HashdError {
  const details = { stderr: r.stderr.slice(-4000) };
  if (r.timedOut) {
    return new HashdError(
      "timeout",
      `nix copy to ${target.spec} did not finish within ${Math.round(timeoutMs / 1000)} s`,
    );
  }
  const text = r.stderr;
  if (/signature/i.test(text)) {
    return new HashdError(
      "nix_failed",
      `${target.spec} refused ${path}: it lacks a signature by a key in ${target.spec}'s trusted-public-keys (${nixError(text)})`,
      details,
    );
  }
  if (UNREACHABLE.test(text)) {
    return new HashdError("unavailable", `cannot reach ${target.spec}: ${nixError(text)}`, details);
  }
  return new HashdError("nix_failed", `nix copy to ${target.spec}: ${nixError(text)}`, details);
}

/** The `error: ...` line of Nix's stderr, else its last line. */
function nixError(stderr: string): string {
  const errorLine = stderr
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith("error:"));
  return (errorLine ?? lastLine(stderr)) || "no output";
}
