/**
 * The agent's stops, in the order its phases started things: each phase pushes the stop of what
 * it started as soon as it started it, and stopAll() runs them last first. A stop that throws is
 * logged and the next one runs all the same, so one failing stop leaves nothing else running. It
 * serves both ends: `RunningAgent.stop()`, and a phase that throws half way (daemon.ts).
 */
export class StopStack {
  private readonly entries: { name: string; stop: () => unknown }[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly log: (msg: string) => void) {}

  /** `stop` may be async: the next one waits for it. */
  push(name: string, stop: () => unknown): void {
    // after stopAll() began, it would never run: a phase that still pushes is a bug
    if (this.stopping) throw new Error(`${name}: pushed onto a stop stack that is stopping`);
    this.entries.push({ name, stop });
  }

  /** What is pushed, first pushed first. */
  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** Runs every stop once, last pushed first; a second call waits for the same run. */
  stopAll(): Promise<void> {
    this.stopping ??= this.run();
    return this.stopping;
  }

  private async run(): Promise<void> {
    for (let e = this.entries.pop(); e !== undefined; e = this.entries.pop()) {
      try {
        await e.stop();
      } catch (err) {
        this.log(`stopping ${e.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
      }
    }
  }
}
