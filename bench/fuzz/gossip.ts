/**
 * The gossip decoders' fuzz (test/gossip-fuzz/decoders.ts) at length: hostile plaintexts
 * sealed with a known key through every decode path (UDP packets, stream frames and requests,
 * push-pull replies, the decoders alone). Prints the seed (a seed replays a run exactly), cases
 * run, time, the slowest case and the peak RSS; exits 1 on the first throw or undecodable answer.
 *
 *   bun bench/fuzz/gossip.ts [--cases 1000000] [--seed S]   (default seed: random, printed)
 */
import { parseArgs } from "node:util";
import { type FuzzResult, fuzzDecoders } from "../../test/gossip-fuzz/decoders.ts";

const { values } = parseArgs({
  options: {
    cases: { type: "string", default: "1000000" },
    seed: { type: "string" },
  },
});
const cases = Number(values.cases);
const seed =
  values.seed === undefined ? (crypto.getRandomValues(new Uint32Array(1))[0] ?? 1) : Number(values.seed);
if (!Number.isSafeInteger(cases) || cases < 1 || !Number.isSafeInteger(seed) || seed < 0) {
  console.error("usage: bun bench/fuzz/gossip.ts [--cases N] [--seed S]");
  process.exit(2);
}

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
const line = (r: FuzzResult): string =>
  `${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s (${((r.ms * 1000) / r.cases).toFixed(1)} µs/case); ` +
  `worst case ${r.worstMs.toFixed(2)} ms (#${r.worstCase}); RSS ${mib(r.rssStart)} at start, peak ${mib(r.rssPeak)}`;

console.log(`gossip decoder fuzz: seed ${seed}, ${cases} cases`);
const r = fuzzDecoders({ cases, seed, onProgress: (p) => p.cases < cases && console.log(`  ${line(p)}`) });
console.log(line(r));
console.log(
  `paths: udp ${r.paths.udp}, stream request ${r.paths.request}, push-pull reply ${r.paths.reply}, ` +
    `decoders ${r.paths.decoders}; accepted as valid: ${r.accepted}`,
);
if (r.failure !== null) {
  console.error(`FAILED at case ${r.failure.case} (replay: --seed ${seed} --cases ${r.failure.case + 1}):`);
  console.error(r.failure.error);
  process.exit(1);
}
