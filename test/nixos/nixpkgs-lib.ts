/**
 * nixpkgs' lib for the tests that evaluate the NixOS module, the flake and the README's examples with
 * the real module system (lib.evalModules; Nix 2.8 runs it, but not lib.fileset).
 *
 * Where it is looked for, in order:
 * - $HASHD_NIXPKGS_LIB: a directory holding lib/default.nix (an extracted nixpkgs or nixpkgs.lib),
 *   a .tar.gz of one, or a directory holding one .tar.gz;
 * - ../shared/nixpkgs-lib/ next to the repository (nix-community/nixpkgs.lib as a .tar.gz).
 * A tarball is extracted into a temporary directory, removed when the test file ends.
 *
 * When it is missing the tests are skipped with a loud warning; with CI set (CI=true, as CI runs
 * them) they fail instead, so that CI never passes without them.
 */
import { afterAll, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const REPO = path.resolve(import.meta.dir, "../..");
const SHARED = path.resolve(REPO, "../shared/nixpkgs-lib");

const isLibRoot = (dir: string) => fs.existsSync(path.join(dir, "lib", "default.nix"));
const isTarball = (file: string) => /\.tar\.gz$|\.tgz$/.test(file) && fs.statSync(file).isFile();

/** The tarball or tree `place` names, or why it names none. */
function resolvePlace(place: string): { tree: string } | { tarball: string } | { problem: string } {
  if (!fs.existsSync(place)) return { problem: `${place} does not exist` };
  if (fs.statSync(place).isFile())
    return isTarball(place) ? { tarball: place } : { problem: `${place} is not a .tar.gz` };
  if (isLibRoot(place)) return { tree: place };
  const tarballs = fs.readdirSync(place).filter((f) => isTarball(path.join(place, f)));
  if (tarballs.length === 1) return { tarball: path.join(place, tarballs[0] as string) };
  return {
    problem: `${place} holds neither lib/default.nix nor exactly one .tar.gz (found ${tarballs.length})`,
  };
}

function extract(tarball: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hashd-nixpkgs-lib-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync("tar", ["-xzf", tarball, "-C", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cannot extract ${tarball}: ${r.stderr}`);
  // the tree is either at the top of the tarball or in its one top-level directory
  if (isLibRoot(dir)) return dir;
  const [only, ...rest] = fs.readdirSync(dir);
  if (only !== undefined && rest.length === 0 && isLibRoot(path.join(dir, only))) return path.join(dir, only);
  throw new Error(`${tarball} holds no lib/default.nix`);
}

/**
 * The root of a nixpkgs (lib) tree, i.e. `import <root>/lib` is nixpkgs' lib; or undefined, after
 * registering what a missing lib means for `what`: a failing test in CI, a loud skip elsewhere.
 */
export function nixpkgsLib(what: string): string | undefined {
  const env = process.env.HASHD_NIXPKGS_LIB;
  const places = env ? [env] : [SHARED];
  const problems: string[] = [];
  for (const place of places) {
    const found = resolvePlace(place);
    if ("tree" in found) return found.tree;
    if ("tarball" in found) return extract(found.tarball);
    problems.push(found.problem);
  }
  const message =
    `nixpkgs' lib was not found (${problems.join("; ")}), so ${what} did not run. ` +
    "Put nix-community/nixpkgs.lib (or nixpkgs) there as a .tar.gz or extracted, or point " +
    "HASHD_NIXPKGS_LIB at one (see test/nixos/nixpkgs-lib.ts).";
  const ci = process.env.CI;
  if (ci !== undefined && ci !== "" && ci !== "false" && ci !== "0") {
    test(`nixpkgs' lib is present (${what})`, () => {
      throw new Error(`${message} CI is set: these tests must run in CI.`);
    });
  } else {
    const bar = "!".repeat(100);
    console.warn(`\n${bar}\n!!! SKIPPED: ${message}\n${bar}\n`);
    test.skip(`${what} (SKIPPED: nixpkgs' lib not found)`, () => {});
  }
  return undefined;
}
