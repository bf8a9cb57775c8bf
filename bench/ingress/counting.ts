/**
 * The per-request cost of request counting (src/agent/ingress/request-stats.ts) alone, in-process:
 * what the ingress adds per counted request (two performance.now() calls and one record()), against
 * the same loop without them. Steadier than the side-by-side wrk rows of run.ts on a busy machine,
 * and comparable with run.ts's "proxy CPU µs/req" for hashd (about 20-45 µs).
 *   bun bench/ingress/counting.ts [--hashes 100] [--aliases 3] [--n 5000000]
 */
import { RequestStats } from "../../src/agent/ingress/request-stats.ts";

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? Number(argv[index + 1]) : fallback;
};
const hashCount = option("hashes", 100);
const aliasCount = option("aliases", 3);
const n = option("n", 5_000_000);
const hashes = Array.from({ length: hashCount }, (_, i) => i.toString(32).padStart(32, "0"));
const aliases = [null, ...Array.from({ length: aliasCount }, (_, i) => `alias${i}`)];

function run(counting: boolean): number {
  const stats = new RequestStats();
  let sink = 0;
  const start = Bun.nanoseconds();
  for (let i = 0; i < n; i++) {
    const hash = hashes[i % hashCount] as string;
    const alias = aliases[i % aliases.length] as string | null;
    if (counting) {
      const from = performance.now();
      const status = i % 97 === 0 ? 503 : 200;
      stats.record(hash, alias, status, performance.now() - from + (i % 50));
    } else sink += hash.length + (alias?.length ?? 0);
  }
  const ns = (Bun.nanoseconds() - start) / n;
  if (sink < 0) console.log(sink);
  return ns;
}

const rounds: [number, number][] = [];
for (let r = 0; r < 5; r++) rounds.push([run(false), run(true)]);
const added = rounds.map(([off, on]) => on - off).sort((a, b) => a - b);
const median = added[Math.floor(added.length / 2)] as number;
console.log(`${hashCount} hashes x ${aliases.length} aliases, ${n} requests per round, 5 rounds`);
console.log(
  `counting adds ${median.toFixed(0)} ns per request (median; rounds ${added.map((a) => a.toFixed(0)).join(", ")})`,
);
for (const cpuUs of [20, 30, 45])
  console.log(`  = ${((median / 1000 / cpuUs) * 100).toFixed(2)}% of a proxy CPU cost of ${cpuUs} µs/req`);
