import { HashdError } from "../lib/errors.ts";
import { outputClosed } from "./output-closed.ts";

/**
 * A command whose output is a long-running child's own (`hashd logs --follow`): journalctl on
 * this host, or ssh running `hashd logs --follow` on another. The child writes straight to the
 * CLI's standard output and error (no copy through the CLI), so a child that watches its output
 * notices when the reader goes away: journalctl exits when its standard output is closed, which
 * is what ends the remote side when an ssh connection closes.
 */
export interface Stream {
  argv: string[];
  /** what the child is, for exit statuses and messages */
  via: { kind: "journalctl" } | { kind: "ssh"; host: string };
}

/** How a stream ended. */
export interface StreamEnd {
  /** the child's exit status, null when a signal killed it */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** the signal that asked the CLI to stop (Ctrl-C, SIGTERM, SIGHUP), forwarded to the child */
  stoppedBy: NodeJS.Signals | null;
  /** nobody reads the CLI's standard output any more (`hashd logs -f | head`; output-closed.ts) */
  outputClosed: boolean;
}

export type StreamRunner = (stream: Stream) => Promise<StreamEnd>;

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** ssh(1) exits 255 when it could not connect or lost the connection. */
const SSH_FAILED = 255;

/**
 * Runs the child attached to this process's standard output and error (standard input is not
 * passed on). Ctrl-C, SIGTERM and SIGHUP are forwarded to it and it is waited for, so the CLI
 * never leaves it behind; on a terminal Ctrl-C reaches both anyway (one process group).
 */
export const runAttached: StreamRunner = async (stream) => {
  let stoppedBy: NodeJS.Signals | null = null;
  let child: ReturnType<typeof Bun.spawn> | undefined;
  const handlers = STOP_SIGNALS.map((signal) => {
    const handler = () => {
      stoppedBy ??= signal;
      child?.kill(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    try {
      child = Bun.spawn(stream.argv, { stdin: "ignore", stdout: "inherit", stderr: "inherit" });
    } catch (e) {
      throw new HashdError("internal", `cannot run ${stream.argv[0]}: ${(e as Error).message}`);
    }
    await child.exited;
    return {
      code: child.exitCode,
      signal: (child.signalCode as NodeJS.Signals | null) ?? null,
      stoppedBy,
      outputClosed: outputClosed(1),
    };
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
};

/**
 * What a stream's end means for the exit code: stopping it (Ctrl-C, SIGTERM, SIGHUP) and a reader
 * that went away are how a follow normally ends (0). Otherwise: ssh's 255 is an unreachable host
 * or a lost connection (8); another ssh status is the remote hashd's own exit code, passed on (its
 * message came through ssh's standard error); a failing journalctl is systemd's (6).
 */
export function streamOutcome(stream: Stream, end: StreamEnd): { code: number; error?: HashdError } {
  if (end.stoppedBy || end.outputClosed || end.code === 0 || end.signal === "SIGPIPE") return { code: 0 };
  const how = end.code !== null ? `exited ${end.code}` : `was killed by ${end.signal}`;
  if (stream.via.kind === "ssh") {
    if (end.code === SSH_FAILED || end.code === null) {
      const error = new HashdError(
        "unavailable",
        `lost the connection to ${stream.via.host}, or could not reach it (ssh ${how})`,
      );
      return { code: error.exitCode, error };
    }
    return { code: end.code };
  }
  const error = new HashdError("systemd_failed", `journalctl ${how}`);
  return { code: error.exitCode, error };
}
