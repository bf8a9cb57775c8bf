/**
 * The layers of src/, read from the imports. `bun scripts/layers.ts` prints the picture that
 * docs/architecture.md shows; `--write` puts it there; test/architecture.test.ts fails when a
 * production file imports upward or the picture in the docs is stale.
 *
 * A unit is a folder (or, where a folder holds two ranks, a file). A production file may import
 * from its own unit, from a unit of a lower rank, or from a peer its unit is declared to share a
 * rank with; from outside a folder listed in SURFACES, only its surface file. Tests (*.test.ts) may import anything, but production never imports from test/ or bench/.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "..");

export interface Unit {
  /** a folder or a file under src/, relative to the repository */
  path: string;
  rank: number;
  role: string;
}

/** Lowest first. The longest matching path names a file's unit. */
export const UNITS: readonly Unit[] = [
  { path: "src/lib", rank: 0, role: "errors, exec, Prometheus text, zod problems, seeded PRNG, timers" },
  { path: "src/model", rank: 1, role: "names, manifest, deployment states, cluster reports, HLC, config" },
  { path: "src/nix", rank: 2, role: "store paths, nix copy / path-info / gcroots" },
  { path: "src/systemd", rank: 3, role: "systemctl, transient units, proxied units, sd_notify" },
  { path: "src/deploy", rank: 3, role: "hashd deploy: inputs, SSH targets, remote agent, progress" },
  { path: "src/agent/state", rank: 4, role: "SQLite store (WAL): deployments, events, aliases, holds" },
  { path: "src/agent/holds", rank: 4, role: "leases on hashes, their tokens and their HTTP API" },
  { path: "src/agent/gossip/types.ts", rank: 4, role: "gossip vocabulary" },
  { path: "src/agent/gossip/config.ts", rank: 4, role: "gossip tunables" },
  { path: "src/agent/gossip/wire", rank: 5, role: "messages, msgpack codec and scan, sealing, frames" },
  { path: "src/agent/gossip/swim", rank: 6, role: "membership and failure detection" },
  { path: "src/agent/gossip/sync", rank: 6, role: "app state and alias replication" },
  { path: "src/agent/gossip/core.ts", rank: 7, role: "GossipNode, the pure state machine" },
  { path: "src/agent/gossip/net", rank: 8, role: "UDP and TCP driver" },
  { path: "src/agent/gossip/index.ts", rank: 9, role: "the gossip layer's surface" },
  { path: "src/agent/aliases", rank: 10, role: "alias names, resolution, writes, rollback" },
  { path: "src/agent/lifecycle", rank: 11, role: "activate, readiness, reconcile, unit watch" },
  { path: "src/agent/ingress", rank: 11, role: "the HTTP/1.1 proxy, in-flight counts, scale to zero" },
  { path: "src/agent/retirement", rank: 12, role: "what is wanted, the planner, the retirer" },
  {
    path: "src/agent/rollout",
    rank: 12,
    role: "the rollout driver: judges canaries, one alias write per step",
  },
  { path: "src/agent/cluster", rank: 13, role: "solo or gossip cluster, reports, route table" },
  { path: "src/agent/status", rank: 14, role: "the status page" },
  { path: "src/agent/control", rank: 14, role: "the control API on the unix socket" },
  { path: "src/agent/compose", rank: 15, role: "the agent's start phases and their stops" },
  { path: "src/agent/daemon.ts", rank: 16, role: "startAgent: the single-instance check, then the phases" },
  { path: "src/cli", rank: 17, role: "the hashd command" },
  { path: "src/cli.ts", rank: 18, role: "entry point" },
];

/** Folders whose inside is private: from outside them, only the named file is imported. */
export const SURFACES: readonly { folder: string; file: string }[] = [
  { folder: "src/agent/gossip", file: "src/agent/gossip/index.ts" },
];

/** Units that share a rank and call each other (both directions allowed). */
export const PEERS: readonly (readonly [string, string])[] = [
  ["src/agent/gossip/swim", "src/agent/gossip/sync"],
];

export function unitOf(file: string): Unit | undefined {
  let best: Unit | undefined;
  for (const u of UNITS) {
    if ((file === u.path || file.startsWith(`${u.path}/`)) && (!best || u.path.length > best.path.length))
      best = u;
  }
  return best;
}

const SPEC =
  /(?:^|[\s;])(?:import|export)\s[^"'`;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

/** Relative imports of one file, as repository paths. */
export function importsOf(file: string): string[] {
  const text = readFileSync(join(REPO, file), "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(SPEC)) {
    const spec = m[1] ?? m[2];
    if (spec?.startsWith(".")) out.push(relative(REPO, resolve(dirname(join(REPO, file)), spec)));
  }
  return out;
}

export function sourceFiles(dir = "src"): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(REPO, dir), { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.tsx?$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

export const isTest = (file: string) => file.endsWith(".test.ts");

export interface Violation {
  file: string;
  imports: string;
  why: string;
}

/** Why production file `file` may not import `target` (both repository paths), or null if it may. */
export function judge(file: string, target: string): string | null {
  const from = unitOf(file);
  if (!from) return "belongs to no unit in scripts/layers.ts";
  if (!target.startsWith("src/")) return target === "package.json" ? null : "production imports outside src/";
  const surface = SURFACES.find((x) => target.startsWith(`${x.folder}/`) && !file.startsWith(`${x.folder}/`));
  if (surface && target !== surface.file)
    return `only ${surface.file} is imported from outside ${surface.folder}`;
  const to = unitOf(target);
  if (!to) return `${target} belongs to no unit in scripts/layers.ts`;
  if (to === from || to.rank < from.rank) return null;
  if (PEERS.some(([a, b]) => (a === from.path && b === to.path) || (a === to.path && b === from.path)))
    return null;
  return `${from.path} (rank ${from.rank}) imports ${to.path} (rank ${to.rank})`;
}

export function violations(): Violation[] {
  const out: Violation[] = [];
  for (const file of sourceFiles()) {
    if (isTest(file)) continue;
    if (!unitOf(file)) {
      out.push({ file, imports: "", why: "belongs to no unit in scripts/layers.ts" });
      continue;
    }
    for (const target of importsOf(file)) {
      const why = judge(file, target);
      if (why) out.push({ file, imports: target, why });
    }
  }
  return out;
}

/** unit -> the units it imports (production files only). */
export function edges(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>(UNITS.map((u) => [u.path, new Set<string>()]));
  for (const file of sourceFiles()) {
    if (isTest(file)) continue;
    const from = unitOf(file);
    if (!from) continue;
    for (const target of importsOf(file)) {
      const to = unitOf(target);
      if (to && to !== from) out.get(from.path)?.add(to.path);
    }
  }
  return out;
}

const short = (p: string) => p.replace(/^src\//, "");

/** The picture: ranks from the top, each unit with what it imports directly. */
export function picture(): string {
  const e = edges();
  const ranks = [...new Set(UNITS.map((u) => u.rank))].sort((a, b) => b - a);
  const lines: string[] = [];
  for (const r of ranks) {
    for (const u of UNITS.filter((x) => x.rank === r)) {
      const deps = [...(e.get(u.path) ?? [])].map(short).sort();
      lines.push(`${String(r).padStart(2)}  ${short(u.path).padEnd(26)} ${u.role}`);
      if (deps.length > 0) lines.push(`${" ".repeat(30)}-> ${deps.join(", ")}`);
    }
  }
  return lines.join("\n");
}

export const BEGIN = "<!-- layers: generated by `bun scripts/layers.ts --write` -->";
export const END = "<!-- /layers -->";

export function docsBlock(): string {
  return `${BEGIN}\n\n\`\`\`\n${picture()}\n\`\`\`\n\n${END}`;
}

if (import.meta.main) {
  const bad = violations();
  for (const v of bad) console.error(`${v.file} -> ${v.imports}: ${v.why}`);
  if (process.argv.includes("--write")) {
    const docs = join(REPO, "docs/architecture.md");
    const text = readFileSync(docs, "utf8");
    const a = text.indexOf(BEGIN);
    const b = text.indexOf(END);
    if (a < 0 || b < 0) throw new Error(`docs/architecture.md has no ${BEGIN} ... ${END} block`);
    await Bun.write(docs, text.slice(0, a) + docsBlock() + text.slice(b + END.length));
    console.log("docs/architecture.md: layer picture written");
  } else {
    console.log(picture());
  }
  process.exit(bad.length > 0 ? 1 : 0);
}
