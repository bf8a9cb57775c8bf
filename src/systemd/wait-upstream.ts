/**
 * `hashd wait-upstream <target>`: the ExecStartPost= of a proxied program's unit. It returns once
 * the program's upstream (a unix path or 127.0.0.1:<port>) accepts a connection, so the start job
 * of the app unit ends only then, and the proxy (ordered after it) never connects to an upstream
 * that would refuse: connections wait in the systemd socket's backlog instead of being reset.
 * It runs inside the app unit's sandbox (same user, same network namespace), and systemd bounds it
 * with the unit's TimeoutStartSec=. If the program exits while ExecStartPost= runs, systemd waits
 * for ExecStartPost= (systemd.service(5)), so the waiter watches $MAINPID and gives up at once.
 */
export const WAIT_UPSTREAM_COMMAND = "wait-upstream";

export type UpstreamTarget = { unix: string } | { hostname: string; port: number };

/** "unix:/run/x.sock" or "tcp:127.0.0.1:8080": one argv item, no spaces needed. */
export function formatUpstreamTarget(t: UpstreamTarget): string {
  return "unix" in t ? `unix:${t.unix}` : `tcp:${t.hostname}:${t.port}`;
}

export function parseUpstreamTarget(text: string): UpstreamTarget {
  if (text.startsWith("unix:/")) return { unix: text.slice(5) };
  const m = /^tcp:([0-9.]+|\[[0-9a-f:]+\]):(\d{1,5})$/i.exec(text);
  const port = Number(m?.[2]);
  if (m?.[1] && port >= 1 && port <= 65535) return { hostname: m[1].replace(/^\[|\]$/g, ""), port };
  throw new Error(`bad upstream ${JSON.stringify(text)}: expected unix:/path or tcp:<ip>:<port>`);
}

/** One connection attempt: resolves when the upstream accepted it (it is closed at once). */
export type Connect = (target: UpstreamTarget) => Promise<void>;

export const connectOnce: Connect = async (target) => {
  const handler = { data() {} };
  const socket =
    "unix" in target
      ? await Bun.connect({ unix: target.unix, socket: handler })
      : await Bun.connect({ hostname: target.hostname, port: target.port, socket: handler });
  socket.end();
};

export interface WaitOptions {
  /** give up after this long (default: never; systemd's TimeoutStartSec= is the bound) */
  timeoutMs?: number;
  connect?: Connect;
  sleep?: (ms: number) => Promise<void>;
  /** false once the program is gone: waiting longer is pointless */
  alive?: () => boolean;
}

/** Polls until a connection succeeds; returns the number of attempts, or throws the last error. */
export async function waitUpstream(target: UpstreamTarget, options: WaitOptions = {}): Promise<number> {
  const connect = options.connect ?? connectOnce;
  const sleep = options.sleep ?? Bun.sleep;
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let delay = 5;
  for (let attempt = 1; ; attempt++) {
    try {
      await connect(target);
      return attempt;
    } catch (e) {
      if (Date.now() + delay > deadline) throw e;
      if (options.alive && !options.alive()) {
        throw new Error(`the program exited before it accepted a connection (${(e as Error).message})`);
      }
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}

/** Entry point of the hidden sub-command; returns the exit code. */
export async function waitUpstreamMain(argv: string[], err: (line: string) => void): Promise<number> {
  const [text] = argv;
  if (argv.length !== 1 || text === undefined) {
    err(`usage: hashd ${WAIT_UPSTREAM_COMMAND} unix:/path | tcp:<ip>:<port>`);
    return 1;
  }
  let target: UpstreamTarget;
  try {
    target = parseUpstreamTarget(text);
  } catch (e) {
    err(`hashd ${WAIT_UPSTREAM_COMMAND}: ${(e as Error).message}`);
    return 1;
  }
  const started = Date.now();
  const mainPid = Number(process.env.MAINPID);
  try {
    const attempts = await waitUpstream(target, mainPid > 0 ? { alive: () => processAlive(mainPid) } : {});
    err(`hashd: upstream ${text} accepts connections (${attempts} attempt(s), ${Date.now() - started} ms)`);
    return 0;
  } catch (e) {
    err(`hashd: upstream ${text}: ${(e as Error).message}`);
    return 1;
  }
}

/** kill(pid, 0): ESRCH means gone; EPERM means it exists under another uid. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
