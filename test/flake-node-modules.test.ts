/**
 * flake.nix's node_modules fixed-output derivation holds a real hash, and it stays true:
 * - it is the hash of the tree bun.lock gives (scripts/node-modules-hash.ts), so a lockfile change
 *   without `bun scripts/node-modules-hash.ts --write` fails here, not on a user's first build;
 * - Nix itself (Debian's nix 2.8) agrees: a fixed-output derivation that runs the same
 *   nix/node-modules.sh builds with that hash. It runs in a private chroot store in a temporary
 *   directory, with no build users, so the machine's /nix is not touched.
 * Needs bun, nix, root (a chroot store builds in Nix's sandbox) and the npm registry.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  flakeHash,
  INSTALL_SCRIPT,
  LOCK_FILES,
  lockfileHash,
  REPO,
  withFlakeHash,
} from "../scripts/node-modules-hash.ts";

const scratch = mkdtempSync(join(tmpdir(), "hashd-flake-node-modules-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const flake = readFileSync(join(REPO, "flake.nix"), "utf8");
const pinned = flakeHash(flake);

/** A copy of what the derivation's source holds (flake.nix: lockSrc), to change or to build. */
function lockSource(name: string): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, "nix"), { recursive: true });
  for (const f of [...LOCK_FILES, INSTALL_SCRIPT]) cpSync(join(REPO, f), join(dir, f));
  return dir;
}

describe("flake.nix: the node_modules hash", () => {
  test("is the hash of the tree bun.lock gives (else: bun scripts/node-modules-hash.ts --write)", () => {
    expect(pinned).toMatch(/^sha256-[A-Za-z0-9+/]{43}=$/);
    expect({ "flake.nix": pinned }).toEqual({ "flake.nix": lockfileHash(REPO) });
  });

  test("another lockfile gives another hash, so a stale one is caught", () => {
    // drop a runtime dependency from package.json and bun.lock alike (a consistent, frozen lockfile)
    const dir = lockSource("changed");
    for (const f of ["package.json", "bun.lock"]) {
      const path = join(dir, f);
      const text = readFileSync(path, "utf8");
      const without = text
        .split("\n")
        .filter((l) => !/^\s*"citty": /.test(l))
        .join("\n");
      expect(without).not.toBe(text);
      writeFileSync(path, without);
    }
    const changed = lockfileHash(dir);
    expect(changed).toMatch(/^sha256-/);
    expect(changed).not.toBe(pinned);
  });

  test("the script rewrites exactly the marked line", () => {
    const other = `sha256-${"A".repeat(43)}=`;
    const rewritten = withFlakeHash(flake, other);
    expect(flakeHash(rewritten)).toBe(other);
    expect(rewritten.replace(other, pinned)).toBe(flake);
    expect(() => flakeHash(flake.replace("# bun scripts/node-modules-hash.ts --write", ""))).toThrow(
      /found 0/,
    );
  });

  test("is what Nix computes for a fixed-output derivation running nix/node-modules.sh", () => {
    const src = lockSource("nix-src");
    const store = join(scratch, "store");
    const bun = realpathSync(Bun.which("bun") ?? "bun");
    const caFile = process.env.NODE_EXTRA_CA_CERTS;
    // the builder's view of the machine: a shell, coreutils, findutils, bun, CA certificates
    const visible = [
      "/bin",
      "/lib",
      "/lib64",
      "/usr",
      "/etc/ssl",
      dirname(bun),
      ...(caFile ? [dirname(caFile)] : []),
    ]
      .filter((p) => existsSync(p))
      .map((p) => (lstatSync(p).isSymbolicLink() ? `${p}=${realpathSync(p)}` : p));
    const expr = `builtins.derivation {
      name = "hashd-node-modules-check";
      system = builtins.currentSystem;
      builder = "/bin/sh";
      src = builtins.path { path = ${JSON.stringify(src)}; name = "hashd-lock"; };
      args = [ "-c" ''
        set -eu
        export PATH=${dirname(bun)}:/usr/bin:/bin
        cp -R "$src"/. src && chmod -R u+w src && cd src
        sh ${INSTALL_SCRIPT} "$out"
      '' ];
      impureEnvVars = [ "NODE_EXTRA_CA_CERTS" "http_proxy" "https_proxy" "all_proxy" "no_proxy" "HTTP_PROXY" "HTTPS_PROXY" "ALL_PROXY" "NO_PROXY" ];
      outputHashMode = "recursive";
      outputHashAlgo = "sha256";
      outputHash = "${pinned}";
    }`;
    const r = spawnSync(
      "nix-build",
      [
        "--no-out-link",
        "--store",
        store,
        "--option",
        "build-users-group",
        "",
        "--option",
        "substituters",
        "",
        "--option",
        "extra-sandbox-paths",
        visible.join(" "),
        "-E",
        expr,
      ],
      { cwd: scratch, encoding: "utf8", env: { ...process.env, HOME: scratch, NIX_CONFIG: "" } },
    );
    if (r.error)
      throw new Error(`cannot run nix-build (Debian: apt-get install nix-bin): ${r.error.message}`);
    // on a mismatch Nix prints "specified: <flake.nix's>  got: <its own>"
    expect({ status: r.status, stderr: r.status === 0 ? "" : r.stderr }).toEqual({ status: 0, stderr: "" });
    const out = r.stdout.trim();
    expect(out).toMatch(/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-hashd-node-modules-check$/);
    expect(existsSync(join(store, out, "node_modules", "hono", "package.json"))).toBe(true);
  });
});
