/**
 * The hash of flake.nix's node_modules fixed-output derivation, computed from bun.lock: the tree
 * is made by nix/node-modules.sh, the same script the derivation runs, and hashed with `nix hash
 * path` (the NAR hash Nix checks a recursive fixed-output derivation against). Needs bun, nix and
 * the npm registry; never touches a Nix store (`--store dummy://`).
 *
 *   bun scripts/node-modules-hash.ts           print the hash bun.lock gives
 *   bun scripts/node-modules-hash.ts --check   exit 1 when flake.nix holds another one
 *   bun scripts/node-modules-hash.ts --write   put it in flake.nix (after changing bun.lock)
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "..");

/** What the derivation's source holds besides the script (flake.nix, lockSrc). */
export const LOCK_FILES = ["package.json", "bun.lock", "bunfig.toml"] as const;
export const INSTALL_SCRIPT = "nix/node-modules.sh";

/** The line of flake.nix that holds the hash, marked with this script's name. */
const HASH_LINE =
  /(outputHash = ")(sha256-[A-Za-z0-9+/]{43}=)(";\s*# bun scripts\/node-modules-hash\.ts --write)/g;

export function flakeHash(flake: string): string {
  const found = [...flake.matchAll(HASH_LINE)];
  if (found.length !== 1) {
    throw new Error(
      `flake.nix: expected one outputHash line marked "# bun scripts/node-modules-hash.ts --write", found ${found.length}`,
    );
  }
  return found[0]?.[2] as string;
}

export function withFlakeHash(flake: string, hash: string): string {
  flakeHash(flake); // exactly one line to replace
  if (!/^sha256-[A-Za-z0-9+/]{43}=$/.test(hash)) throw new Error(`not a sha256 SRI hash: ${hash}`);
  return flake.replace(HASH_LINE, (_, head: string, _old: string, tail: string) => `${head}${hash}${tail}`);
}

function run(argv: string[], cwd: string, env: Record<string, string | undefined> = process.env): string {
  const r = spawnSync(argv[0] as string, argv.slice(1), { cwd, env, encoding: "utf8" });
  if (r.error) throw new Error(`cannot run ${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}:\n${r.stderr.trim()}`);
  return r.stdout;
}

/** `nix hash path`: sha256 of the NAR serialisation, as SRI; a dummy store, so nothing is written. */
export function nixHashPath(path: string, home: string): string {
  const out = run(
    [
      "nix",
      "--store",
      "dummy://",
      "--extra-experimental-features",
      "nix-command",
      "hash",
      "path",
      "--type",
      "sha256",
      path,
    ],
    home,
    { ...process.env, HOME: home },
  );
  return out.trim();
}

/** The derivation's output for this repository's bun.lock, made in `dir`/out; returns that path. */
export function makeTree(repo: string, dir: string): string {
  const src = join(dir, "src");
  mkdirSync(src);
  for (const f of LOCK_FILES) copyFileSync(join(repo, f), join(src, f));
  const out = join(dir, "out");
  // the environment is passed on: proxies and extra CA certificates of this machine apply to bun
  run(["sh", join(repo, INSTALL_SCRIPT), out], src);
  return out;
}

/** The hash flake.nix should hold for `repo`'s bun.lock. */
export function lockfileHash(repo = REPO): string {
  const dir = mkdtempSync(join(tmpdir(), "hashd-node-modules-"));
  try {
    return nixHashPath(makeTree(repo, dir), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const mode = process.argv[2];
  if (mode !== undefined && mode !== "--check" && mode !== "--write") {
    console.error("usage: bun scripts/node-modules-hash.ts [--check | --write]");
    process.exit(2);
  }
  const flakePath = join(REPO, "flake.nix");
  const flake = readFileSync(flakePath, "utf8");
  const hash = lockfileHash();
  const current = flakeHash(flake);
  if (mode === undefined) {
    console.log(hash);
  } else if (hash === current) {
    console.log(`flake.nix: node_modules hash ${hash} matches bun.lock`);
  } else if (mode === "--write") {
    writeFileSync(flakePath, withFlakeHash(flake, hash));
    console.log(`flake.nix: node_modules hash ${current} -> ${hash}`);
  } else {
    console.error(
      `flake.nix holds ${current}, bun.lock gives ${hash}: run bun scripts/node-modules-hash.ts --write`,
    );
    process.exit(1);
  }
}
