/**
 * Nix evaluation for tests, with the real nix (Debian's nix-bin 2.8) and never the machine's own
 * /nix store: every call runs against `--store dummy://`, which computes store paths but cannot add
 * anything. --parse needs it too: without it nix opens the machine's local store and, as root,
 * creates /nix/store and /nix/var/nix/db.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";

/** nix-instantiate against `dummy://`, in `scratch` (also its HOME), with no substituters. */
export function nixInstantiate(args: string[], scratch: string) {
  const r = spawnSync("nix-instantiate", ["--store", "dummy://", ...args], {
    cwd: scratch,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: scratch,
      XDG_CACHE_HOME: path.join(scratch, "cache"),
      NIX_CONFIG: "substituters =\nexperimental-features = nix-command",
    },
  });
  if (r.error)
    throw new Error(`cannot run nix-instantiate (Debian: apt-get install nix-bin): ${r.error.message}`);
  return r;
}

/** Evaluates `expr` strictly to JSON. */
export function nixEvalJson(expr: string, scratch: string): unknown {
  const r = nixInstantiate(["--eval", "--strict", "--json", "-E", expr], scratch);
  if (r.status !== 0) throw new Error(`nix-instantiate --eval failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Evaluates `expr`, which must fail; returns the error text (stderr). */
export function nixEvalFailure(expr: string, scratch: string): string {
  const r = nixInstantiate(["--eval", "--strict", "--json", "-E", expr], scratch);
  if (r.status === 0) throw new Error(`expected an evaluation error, got ${r.stdout}`);
  return r.stderr;
}
