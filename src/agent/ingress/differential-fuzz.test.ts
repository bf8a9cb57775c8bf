/**
 * Differential fuzz of the ingress against node:http's parser (llhttp, strict), a security
 * requirement (request smuggling): the same generated requests go to a real ingress, which
 * forwards to node:http servers, and to node:http directly; the ingress must either refuse a
 * request or forward exactly one request that node parses as it parsed the original (method,
 * target, version, headers, trailers, body length). Engine, generator and rules: test/ingress-fuzz/.
 *
 * First the minimal requests of every class found so far (test/ingress-fuzz/corpus.ts), then
 * 10,000 generated cases of a fixed seed; HASHD_FUZZ_SEED and HASHD_FUZZ_CASES change them, and
 * `bun bench/fuzz/ingress.ts` runs a million (or any number) with a random seed. A failure prints
 * each failing case with its seed, index and bytes; `bun bench/fuzz/ingress.ts --seed S --case I`
 * runs one again.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { CORPUS } from "../../../test/ingress-fuzz/corpus.ts";
import {
  type CaseResult,
  describeFinding,
  escapeBytes,
  FuzzEngine,
} from "../../../test/ingress-fuzz/engine.ts";

const SEED = Number(process.env.HASHD_FUZZ_SEED ?? 20_261_207) >>> 0;
const CASES = Number(process.env.HASHD_FUZZ_CASES ?? 10_000);
/** failing cases printed in full (the summary names every class) */
const PRINT = 20;
/** 10,000 cases take about 4 s on this project's 2-core machine; generous for CI machines several times slower */
const TIMEOUT_MS = 180_000;

let engine: FuzzEngine;

beforeAll(async () => {
  engine = await FuzzEngine.start();
});

afterAll(async () => {
  await engine?.stop();
});

test.each(CORPUS)("found before: %s", async (_name, bytes) => {
  const result = await engine.runCase({ index: -1, bytes, tags: [], splits: [] });
  const findings = result.findings.filter((f) => !f.benign);
  if (findings.length > 0) console.error(findings.map((f) => describeFinding(SEED, result, f)).join("\n"));
  expect(findings.map((f) => `${f.cls}: ${f.message}`)).toEqual([]);
});

test(
  `ingress and node:http agree on ${CASES} generated requests (seed ${SEED})`,
  async () => {
    const failing: CaseResult[] = [];
    const summary = await engine.run({
      seed: SEED,
      cases: CASES,
      onCase(result) {
        if (result.findings.some((f) => !f.benign)) failing.push(result);
      },
    });
    const lines = [
      `ingress differential fuzz: seed ${SEED}, ${summary.cases} cases in ${(summary.ms / 1000).toFixed(1)} s: ` +
        `forwarded ${summary.forwarded}, refused ${summary.refused}, failing ${summary.failing}`,
    ];
    for (const c of summary.classes) {
      lines.push(
        `  ${c.cls}${c.benign ? " (benign)" : ""}: ${c.count}; shortest: case ${c.example.index} ${escapeBytes(c.example.bytes)}`,
      );
    }
    failing.sort((a, b) => a.fuzzCase.index - b.fuzzCase.index);
    for (const result of failing.slice(0, PRINT)) {
      for (const finding of result.findings)
        if (!finding.benign) lines.push(describeFinding(SEED, result, finding));
    }
    if (failing.length > PRINT) lines.push(`... and ${failing.length - PRINT} more failing cases`);
    if (summary.ingressErrors.length > 0)
      lines.push(`ingress errors:\n  ${summary.ingressErrors.join("\n  ")}`);
    if (failing.length > 0 || summary.ingressErrors.length > 0) console.error(lines.join("\n"));
    expect(summary.ingressErrors).toEqual([]);
    // one line per class of finding (each failing case is printed above, up to PRINT of them)
    const failed = summary.classes.filter((c) => !c.benign);
    expect(
      failed.map((c) => `${c.cls}: ${c.count}, e.g. case ${c.example.index}: ${c.example.message}`),
    ).toEqual([]);
  },
  TIMEOUT_MS,
);
