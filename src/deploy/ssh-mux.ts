import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Exec } from "../lib/exec.ts";
import { DEFAULT_SSH, destination, type SshOptions, sshOptions, type Target } from "./target.ts";

/** sun_path holds 108 bytes; ssh's %C is 40 hex characters. */
const MAX_SOCKET_PATH = 100;

/**
 * Runs `fn` with ssh connection sharing (ssh_config(5): ControlMaster, ControlPath, ControlPersist):
 * a deploy makes three to four ssh calls per host (store check, nix copy, activate, alias), and
 * only the first pays for the TCP connection, key exchange and authentication. The sockets live in
 * a private directory of this run; the masters are told to exit at the end, and ControlPersist
 * ends any that a killed run left behind once they have been idle for 30 s.
 */
export async function withSshMux<T>(
  targets: Target[],
  exec: Exec,
  fn: (ssh: SshOptions) => Promise<T>,
  base: SshOptions = DEFAULT_SSH,
): Promise<T> {
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), "hashd-ssh-"));
  } catch {
    return fn(base);
  }
  // NIX_SSHOPTS is split on white space, and a socket path has a length limit: else go without.
  if (/\s/.test(dir) || dir.length + 41 > MAX_SOCKET_PATH) {
    rmSync(dir, { recursive: true, force: true });
    return fn(base);
  }
  const ssh = { ...base, controlDir: dir };
  try {
    return await fn(ssh);
  } finally {
    await Promise.all(
      targets.map((t) =>
        exec(["ssh", ...sshOptions(t, ssh), "-O", "exit", "--", destination(t)], { timeoutMs: 10_000 }).catch(
          () => undefined,
        ),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}
