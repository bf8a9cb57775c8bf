import { spawn } from "node:child_process";

/**
 * sd_notify through the `systemd-notify` CLI (Bun has no unix datagram sockets). The message comes
 * from a short-lived child, so the agent's unit needs NotifyAccess=all; --pid names the agent as the
 * main process. Without NOTIFY_SOCKET (not started by systemd) every call is a no-op.
 */
export class Notifier {
  private watchdog: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  get enabled(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  send(...assignments: string[]): Promise<boolean> {
    if (!this.enabled) return Promise.resolve(false);
    return new Promise((resolve) => {
      const child = spawn("systemd-notify", [`--pid=${process.pid}`, ...assignments], {
        stdio: "ignore",
        env: this.env,
      });
      child.on("error", () => resolve(false));
      child.on("exit", (code) => resolve(code === 0));
    });
  }

  ready(status: string): Promise<boolean> {
    return this.send("READY=1", `STATUS=${status}`);
  }

  status(status: string): Promise<boolean> {
    return this.send(`STATUS=${status}`);
  }

  stopping(): Promise<boolean> {
    this.stopWatchdog();
    return this.send("STOPPING=1", "STATUS=stopping");
  }

  /** Pets the watchdog at half of WatchdogSec, as sd_watchdog_enabled(3) advises. */
  startWatchdog(): void {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!this.enabled || !Number.isFinite(usec) || usec <= 0) return;
    const pid = this.env.WATCHDOG_PID;
    if (pid && Number(pid) !== process.pid) return;
    this.watchdog = setInterval(() => void this.send("WATCHDOG=1"), Math.max(100, usec / 1000 / 2));
    this.watchdog.unref?.();
  }

  stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}
