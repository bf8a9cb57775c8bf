import { mkdir, rm, symlink } from "node:fs/promises";
import { HashdError } from "../lib/errors.ts";
import { exec as defaultExec, type Exec, lastLine } from "../lib/exec.ts";
import { parsePathInfoJson } from "./path-info.ts";
import { parseStorePath } from "./store-path.ts";

/** nix 2.8 (Debian) still needs nix-command enabled for `nix copy`; newer Nix accepts the flag too. */
const NIX_FLAGS = ["--extra-experimental-features", "nix-command"];

/** The agent's view of Nix: validity, copy with signature checks, references and GC roots. */
export class Nix {
  constructor(
    private readonly gcRootDir: string,
    private readonly run: Exec = defaultExec,
  ) {}

  async isValid(path: string): Promise<boolean> {
    const r = await this.run(["nix-store", "--check-validity", path], { timeoutMs: 30_000 });
    return r.code === 0;
  }

  /**
   * Copies a closure from a substituter (a binary cache URL or ssh-ng://host). Signature checks
   * stay on: a path not signed by a key in trusted-public-keys is refused by Nix itself.
   */
  async copyFrom(substituter: string, path: string, timeoutMs = 600_000): Promise<void> {
    const r = await this.run(["nix", ...NIX_FLAGS, "copy", "--from", substituter, path], { timeoutMs });
    if (r.code !== 0) {
      const reason = r.timedOut ? "timed out" : lastLine(r.stderr);
      throw new HashdError("nix_failed", `nix copy --from ${substituter} ${path}: ${reason}`, {
        stderr: r.stderr.slice(-4000),
      });
    }
  }

  /** Direct references of a store path (the edges of the dependency graph between services). */
  async references(path: string): Promise<string[]> {
    const r = await this.run(["nix", ...NIX_FLAGS, "path-info", "--json", path], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new HashdError("nix_failed", `nix path-info ${path}: ${lastLine(r.stderr)}`);
    const info = parsePathInfoJson(r.stdout).get(path);
    if (!info) throw new HashdError("nix_failed", `nix path-info ${path}: no entry in its output`);
    return info.references.filter((ref) => ref !== path);
  }

  gcRootPath(hash: string): string {
    return `${this.gcRootDir}/${hash}`;
  }

  /** A symlink in a gcroots directory is a root (nix-store(1), "--add-root"); no process needed. */
  async addGcRoot(path: string): Promise<void> {
    const { hash } = parseStorePath(path);
    await mkdir(this.gcRootDir, { recursive: true });
    const link = this.gcRootPath(hash);
    await rm(link, { force: true });
    await symlink(path, link);
  }

  async removeGcRoot(hash: string): Promise<void> {
    await rm(this.gcRootPath(hash), { force: true });
  }
}
