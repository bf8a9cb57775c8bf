/**
 * Runs a program with an argv array (never a shell string) and collects its output.
 * A time-out kills the child and reports it; the caller decides what a non-zero exit means.
 */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ExecOptions {
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
  input?: string;
}

export type Exec = (argv: string[], options?: ExecOptions) => Promise<ExecResult>;

export const exec: Exec = async (argv, options = {}) => {
  const proc = Bun.spawn(argv, {
    stdin: options.input === undefined ? "ignore" : new TextEncoder().encode(options.input),
    stdout: "pipe",
    stderr: "pipe",
    env: options.env ? { ...process.env, ...options.env } : process.env,
  });
  let timedOut = false;
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          proc.kill("SIGKILL");
        }, options.timeoutMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (timer) clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
};

/** The last non-empty line of a program's stderr, for error messages. */
export function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}
