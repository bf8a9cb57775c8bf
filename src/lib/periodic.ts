/** Runs `task` every `ms`, never two at once; a failure is logged and the loop goes on. */
export function every(
  ms: number,
  task: () => Promise<unknown> | unknown,
  log: (msg: string) => void,
): { stop(): void } {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await task();
    } catch (e) {
      log(`periodic task failed: ${(e as Error).stack ?? e}`);
    } finally {
      running = false;
    }
  }, ms);
  return { stop: () => clearInterval(timer) };
}
