/**
 * Differential fuzz of the ingress against node:http's parser (request smuggling): the engine and
 * the rules are in test/ingress-fuzz/; the bun test src/agent/ingress/differential-fuzz.test.ts runs
 * 10,000 cases of it in CI, this runs as many as asked and prints what it found.
 *
 *   bun bench/fuzz/ingress.ts [--cases 1000000] [--seed S] [--first I] [--lanes 24] [--minimize] [--verbose]
 *   bun bench/fuzz/ingress.ts --seed S --case I        # one case again, with its verdict
 *   ... --ingress /tmp/old/src/agent/ingress/server.ts   # fuzz another copy of the ingress, e.g.
 *       `git archive <commit> src | tar -x -C /tmp/old` (to check that the fuzz finds what a fix fixed)
 *
 * Prints the seed first (a random one unless --seed), then progress every 10 s, then counts
 * (forwarded, refused, idle), each finding class with its shortest example (as JSON-escaped bytes,
 * with the seed and case index that rebuild it) and, with --minimize, a minimized repro per class.
 * Exits 1 when a non-benign finding was seen.
 */
import { describeFinding, escapeBytes, FuzzEngine, statusList } from "../../test/ingress-fuzz/engine.ts";
import { generateCase } from "../../test/ingress-fuzz/generate.ts";

const argv = process.argv.slice(2);
function arg(name: string): string | undefined {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? argv[index + 1] : undefined;
}
const seed = arg("seed") !== undefined ? Number(arg("seed")) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const cases = Number(arg("cases") ?? 1_000_000);
const first = Number(arg("first") ?? 0);
const lanes = Number(arg("lanes") ?? 24);
const one = arg("case");
const verbose = argv.includes("--verbose");

console.log(`seed ${seed}`);
const ingressModule = arg("ingress");
const engine = await FuzzEngine.start({
  lanes,
  startIngress: ingressModule ? (await import(ingressModule)).startIngress : undefined,
});
try {
  if (one !== undefined) {
    const result = await engine.runCase(generateCase(seed, Number(one)));
    console.log(`case ${one}: ${escapeBytes(result.fuzzCase.bytes)}`);
    console.log(`tags ${JSON.stringify(result.fuzzCase.tags)}`);
    console.log(
      `reference: ${result.referenceRequests} request(s)${result.referenceError ? `, then ${result.referenceError}` : ""}; forwarded ${result.forwarded}; client got ${statusList(result)} (${result.ended})`,
    );
    for (const finding of result.findings) console.log(describeFinding(seed, result, finding));
    if (result.findings.length === 0) console.log("no finding");
    process.exitCode = result.findings.some((f) => !f.benign) ? 1 : 0;
  } else {
    console.log(`cases ${cases} (from ${first}), lanes ${lanes}`);
    let done = 0;
    let failing = 0;
    const started = performance.now();
    const progress = setInterval(() => {
      const s = (performance.now() - started) / 1000;
      console.log(`  ${done} cases in ${s.toFixed(0)} s (${(done / s).toFixed(0)}/s), ${failing} failing`);
    }, 10_000);
    const summary = await engine.run({
      seed,
      cases,
      first,
      onCase(result) {
        done++;
        if (result.findings.some((f) => !f.benign)) {
          failing++;
          if (verbose) for (const f of result.findings) console.log(describeFinding(seed, result, f));
        }
      },
    });
    clearInterval(progress);
    console.log(`\nseed ${seed}`);
    console.log(
      `cases ${summary.cases}: forwarded ${summary.forwarded}, refused ${summary.refused} (idle-ended ${summary.idle})`,
    );
    console.log(`failing cases ${summary.failing}; finding classes ${summary.classes.length}`);
    console.log(
      `time ${(summary.ms / 1000).toFixed(1)} s (${((summary.cases / summary.ms) * 1000).toFixed(0)} cases/s)`,
    );
    console.log(
      `peak RSS of this process (harness and ingress) ${(FuzzEngine.peakRss() / 2 ** 20).toFixed(0)} MiB`,
    );
    if (summary.ingressErrors.length > 0)
      console.log(`ingress errors:\n  ${summary.ingressErrors.join("\n  ")}`);
    for (const c of summary.classes) {
      console.log(`\n${c.cls}${c.benign ? " (benign)" : ""}: ${c.count} finding(s)`);
      console.log(`  ${c.example.message}`);
      console.log(`  shortest: seed ${seed}, case ${c.example.index}: ${escapeBytes(c.example.bytes)}`);
      console.log(`  tags ${JSON.stringify(c.example.tags)}`);
      const common = [...c.tags].sort((a, b) => b[1] - a[1]).slice(0, 6);
      console.log(`  most frequent tags in its cases: ${common.map(([t, n]) => `${t} ${n}`).join(", ")}`);
      if (argv.includes("--minimize")) {
        const minimal = await engine.minimize(c.example.bytes, (r) =>
          r.findings.some((f) => f.cls === c.cls),
        );
        console.log(`  minimized: ${escapeBytes(minimal)}`);
      }
    }
    process.exitCode = summary.failing > 0 || summary.ingressErrors.length > 0 ? 1 : 0;
  }
} finally {
  await engine.stop();
}
