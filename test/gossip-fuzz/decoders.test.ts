/**
 * The gossip decoders under hostile plaintexts sealed with the cluster key (fuzz-decoders.ts):
 * every decode path, 30,000 cases, bounded time per case and bounded memory. The long run is
 * bench/fuzz/gossip.ts (a million cases and more, any seed).
 */
import { expect, test } from "bun:test";
import { fuzzDecoders } from "./decoders.ts";

const MiB = 2 ** 20;

test("30,000 hostile sealed plaintexts: no throw, every answer decodes, bounded time and memory", () => {
  const r = fuzzDecoders({ cases: 30_000, seed: 20_250_601, gcEvery: 2_000 });
  if (r.failure !== null) throw new Error(`case ${r.failure.case} (seed ${r.seed}): ${r.failure.error}`);
  console.log(
    `fuzz: ${r.cases} cases in ${r.ms.toFixed(0)} ms, worst ${r.worstMs.toFixed(2)} ms, ` +
      `RSS ${(r.rssStart / MiB).toFixed(0)} -> peak ${(r.rssPeak / MiB).toFixed(0)} MiB, ${r.accepted} accepted`,
  );
  expect(r.cases).toBe(30_000);
  for (const n of Object.values(r.paths)) expect(n).toBeGreaterThan(5000);
  expect(r.accepted).toBeGreaterThan(100); // some hostile messages are valid: the node's logic runs too
  // A case takes tens of microseconds; the limit leaves room for a GC pause on a slow machine
  // (before the fix one 900-byte stream message took 0.46 s and 154 MiB).
  expect(r.worstMs).toBeLessThan(250);
  expect(r.rssPeak - r.rssStart).toBeLessThan(192 * MiB);
}, 60_000);
