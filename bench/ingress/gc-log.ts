/**
 * JavaScriptCore's log of its garbage collections, written to stderr when BUN_JSC_logGC=1: a
 * "START" line per collection, and for each one brought on by allocation the bytes allocated in
 * the cycle. A few lines per collection, so leaving it on costs nothing measurable.
 */

/** The environment for a Bun process whose collections are to be counted. */
export const gcLogEnv = (): Record<string, string | undefined> => ({ ...process.env, BUN_JSC_logGC: "1" });

export function collectionsIn(log: string): number {
  return log.split(": START ").length - 1;
}

/** Bytes allocated over the cycles that ended in a collection (what is left after the last is not counted). */
export function bytesAllocatedIn(log: string): number {
  let bytes = 0;
  for (const match of log.matchAll(/bytes allocated this cycle: (\d+)/g)) bytes += Number(match[1]);
  return bytes;
}
