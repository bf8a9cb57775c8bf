/**
 * The house's rules, read from the code: no production file imports upward (scripts/layers.ts),
 * the layer picture in docs/architecture.md is the one the imports make, and the package is built
 * from production files only (nix/source-filter.nix, evaluated by the real Nix).
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  BEGIN,
  docsBlock,
  END,
  importsOf,
  isTest,
  judge,
  REPO,
  sourceFiles,
  UNITS,
  unitOf,
  violations,
} from "../scripts/layers.ts";
import { nixEvalJson } from "./nix-eval.ts";
import { nixpkgsLib } from "./nixos/nixpkgs-lib.ts";

describe("layers", () => {
  test("no production file imports upward, across a private surface, or out of src/", () => {
    const found = violations().map((v) => `${v.file} -> ${v.imports}: ${v.why}`);
    expect(found).toEqual([]);
  });

  test("every production file belongs to a unit, and every unit holds a file", () => {
    const files = sourceFiles().filter((f) => !isTest(f));
    expect(files.filter((f) => !unitOf(f))).toEqual([]);
    const used = new Set(files.map((f) => unitOf(f)?.path));
    expect(UNITS.map((u) => u.path).filter((p) => !used.has(p))).toEqual([]);
  });

  test("the judge refuses what the rule forbids (a rule that accepts everything would pass above)", () => {
    // downward and same-unit imports are fine
    expect(judge("src/agent/lifecycle/activator.ts", "src/systemd/systemctl.ts")).toBeNull();
    expect(judge("src/agent/gossip/swim/probe.ts", "src/agent/gossip/sync/state-sync.ts")).toBeNull();
    expect(judge("src/agent/cluster/cluster.ts", "src/agent/gossip/index.ts")).toBeNull();
    // upward: systemd reaching for an agent module, the model for the gossip codec
    expect(judge("src/systemd/transient-unit.ts", "src/agent/lifecycle/activator.ts")).toContain("imports");
    expect(judge("src/model/config.ts", "src/agent/gossip/wire/codec-fields.ts")).toContain("only");
    expect(judge("src/agent/holds/holds.ts", "src/agent/ingress/types.ts")).toContain("(rank 11)");
    // sideways between two units of one rank that are not declared peers
    expect(judge("src/agent/ingress/route.ts", "src/agent/lifecycle/activator.ts")).toContain("imports");
    // past a private surface, and out of src/
    expect(judge("src/agent/cluster/cluster.ts", "src/agent/gossip/wire/crypto.ts")).toContain(
      "only src/agent/gossip/index.ts",
    );
    expect(judge("src/agent/status/app.ts", "test/support/status/fixtures.ts")).toBe(
      "production imports outside src/",
    );
    expect(judge("src/nowhere/x.ts", "src/lib/errors.ts")).toContain("belongs to no unit");
  });

  test("importsOf reads static, type-only, re-export and dynamic imports", () => {
    const dir = fs.mkdtempSync(path.join(REPO, "src/.layers-probe-"));
    try {
      const file = path.join(dir, "probe.ts");
      fs.writeFileSync(
        file,
        [
          'import { a } from "../lib/errors.ts";',
          'import type { B } from "../model/names.ts";',
          'export { c } from "../nix/nix.ts";',
          "import {",
          "  d,",
          '} from "../systemd/systemctl.ts";',
          'const e = await import("../deploy/deploy.ts");',
          'import { f } from "node:fs";',
        ].join("\n"),
      );
      expect(importsOf(path.relative(REPO, file)).sort()).toEqual([
        "src/deploy/deploy.ts",
        "src/lib/errors.ts",
        "src/model/names.ts",
        "src/nix/nix.ts",
        "src/systemd/systemctl.ts",
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("docs/architecture.md shows the picture the imports make (bun scripts/layers.ts --write)", () => {
    const docs = fs.readFileSync(path.join(REPO, "docs/architecture.md"), "utf8");
    const a = docs.indexOf(BEGIN);
    const b = docs.indexOf(END);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(docs.slice(a, b + END.length)).toBe(docsBlock());
  });

  test("the command prints the picture and exits 0 on this tree", () => {
    const r = spawnSync(process.execPath, [path.join(REPO, "scripts/layers.ts")], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("agent/gossip/index.ts");
  });
});

test("the retirement simulator runs the retirer's own plan, not a copy of it", () => {
  const sim = fs
    .readdirSync(path.join(REPO, "test/sim/retirement"))
    .filter((f) => f.endsWith(".ts"))
    .flatMap((f) => importsOf(`test/sim/retirement/${f}`));
  expect(sim).toContain("src/agent/retirement/plan.ts");
  const retirer = importsOf("src/agent/retirement/retirer.ts");
  expect(retirer).toContain("src/agent/retirement/plan.ts");
});

describe("the package's source (nix/source-filter.nix)", () => {
  const LIB = nixpkgsLib("the source filter test (test/architecture.test.ts)");
  if (!LIB) return;

  test("holds src/ without tests and the four build files; nothing else, so tests do not change the hash", () => {
    const tracked = spawnSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
      cwd: REPO,
      encoding: "utf8",
    })
      .stdout.split("\n")
      .filter(Boolean);
    const dirs = new Set<string>();
    for (const f of tracked) for (let d = path.dirname(f); d !== "."; d = path.dirname(d)) dirs.add(d);
    const entries = [
      ...tracked.map((p) => ({ p, t: "regular" })),
      ...[...dirs].map((p) => ({ p, t: "directory" })),
    ];
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "hashd-source-filter-"));
    try {
      fs.writeFileSync(path.join(scratch, "entries.json"), JSON.stringify(entries));
      // cleanSourceWith descends only into directories the filter keeps: replay that walk.
      const kept = nixEvalJson(
        `let
          lib = import ${LIB}/lib;
          root = ${REPO};
          keep = import ${REPO}/nix/source-filter.nix { inherit lib; } root;
          entries = builtins.fromJSON (builtins.readFile ${scratch}/entries.json);
          parents = p: let d = builtins.dirOf p; in if d == "." then [ ] else [ d ] ++ parents d;
          kept1 = e: keep "${REPO}/\${e.p}" e.t;
          keptDir = d: keep "${REPO}/\${d}" "directory";
        in map (e: e.p) (builtins.filter (e: e.t == "regular" && kept1 e && builtins.all keptDir (parents e.p)) entries)`,
        scratch,
      ) as string[];
      const expected = tracked.filter(
        (f) =>
          ["package.json", "bun.lock", "bunfig.toml", "tsconfig.json"].includes(f) ||
          (f.startsWith("src/") && !isTest(f)),
      );
      expect(kept.sort()).toEqual(expected.sort());
      expect(kept.some(isTest)).toBe(false);
      expect(kept.filter((f) => /^(test|bench|docs|scripts)\//.test(f))).toEqual([]);

      // and it holds everything the binary is compiled from: src/cli.ts and what it imports
      const need = new Set<string>();
      const queue = ["src/cli.ts"];
      while (queue.length > 0) {
        const f = queue.pop() as string;
        if (need.has(f)) continue;
        need.add(f);
        if (f.endsWith(".ts")) queue.push(...importsOf(f));
      }
      expect([...need].filter((f) => !kept.includes(f))).toEqual([]);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});
