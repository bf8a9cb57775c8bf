/** Runs wrk against one target and reads its figures (requests/s, p50/p99 in µs, errors). */
export interface WrkResult {
  rps: number;
  p50us: number;
  p90us: number;
  p99us: number;
  requests: number;
  errors: number;
  non2xx: number;
}

/**
 * `script` is a wrk Lua script, e.g. one whose delay() paces every connection (see pacedScript).
 */
export async function wrk(
  url: string,
  connections: number,
  seconds: number,
  host?: string,
  script?: string,
): Promise<WrkResult> {
  const args = ["wrk", "-t1", `-c${connections}`, `-d${seconds}s`, "--latency"];
  if (host) args.push("-H", `Host: ${host}`);
  if (script) args.push("-s", script);
  args.push(url);
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`wrk failed: ${await new Response(proc.stderr).text()}`);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50us: latency(/^\s+50%\s+([\d.]+)(us|ms|s)$/m.exec(out)),
    p90us: latency(/^\s+90%\s+([\d.]+)(us|ms|s)$/m.exec(out)),
    p99us: latency(/^\s+99%\s+([\d.]+)(us|ms|s)$/m.exec(out)),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    errors: socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

/**
 * A wrk script that makes each connection wait after every response before its next request: a
 * random whole number of milliseconds from 0 to 2 * meanMs (wrk's delay() counts in ms), so the
 * connections do not fire in step. The same offered load on every path, below saturation, so that
 * the latency a proxy adds is not drowned in CPU queueing (wrk, the proxy and the service share
 * two cores).
 */
export function pacedScript(meanMs: number): string {
  return `function delay()\n  return math.random(0, ${2 * meanMs})\nend\n`;
}

function latency(match: RegExpExecArray | null): number {
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === "us" ? value : match[2] === "ms" ? value * 1000 : value * 1_000_000;
}

/** user+system CPU seconds of a process and all its threads, from /proc/<pid>/stat (clock ticks of 10 ms). */
export async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await Bun.file(`/proc/${pid}/stat`).text()).split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export async function rssBytes(pid: number): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}
