import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { HashdError } from "../../lib/errors.ts";

/**
 * Serves a fetch handler on a unix socket with a given mode. The socket is created under a
 * matching umask, so there is no moment at which it is more open than asked for.
 */
export async function serveUnix(
  path: string,
  mode: number,
  fetch: (req: Request) => Response | Promise<Response>,
): Promise<ReturnType<typeof Bun.serve>> {
  await refuseLiveSocket(path);
  const oldUmask = process.umask(0o777 & ~mode);
  try {
    const server = Bun.serve({ unix: path, fetch });
    chmodSync(path, mode);
    return server;
  } finally {
    process.umask(oldUmask);
  }
}

/**
 * A socket file left by a killed agent is removed; one that answers means another agent runs
 * (a `conflict`). The daemon asks this of its control socket before anything else (daemon.ts).
 */
export async function refuseLiveSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const alive = await fetch("http://agent/", { unix: path, signal: AbortSignal.timeout(1000) })
    .then(() => true)
    .catch(() => false);
  if (alive) throw new HashdError("conflict", `another agent already serves ${path}`);
  unlinkSync(path);
}

export function removeSocket(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}
