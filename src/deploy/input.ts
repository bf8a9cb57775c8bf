import { HashdError } from "../lib/errors.ts";
import { type Exec, lastLine } from "../lib/exec.ts";
import { parseStorePath, STORE_DIR, type StorePath } from "../nix/store-path.ts";

export type DeployInput = { kind: "path"; path: StorePath } | { kind: "installable"; installable: string };

/**
 * What `hashd deploy` was given: a store path (anything under /nix/store/, which must then be a
 * top-level store path exactly) or a flake installable (everything else: `.#web`,
 * `github:org/repo#web`, `./result`, `/nix/store/<hash>-x.drv^out`). Nix builds installables.
 */
export function classifyInput(value: string): DeployInput {
  if (value.startsWith(`${STORE_DIR}/`) && !value.includes("^")) {
    const path = parseStorePath(value);
    if (path.name.endsWith(".drv")) {
      throw new HashdError(
        "bad_request",
        `${value} is a derivation, not a service closure: deploy its output (${value}^out builds it)`,
      );
    }
    return { kind: "path", path };
  }
  if (value === "" || value.startsWith("-") || /\s/.test(value) || hasControlCharacter(value)) {
    throw new HashdError(
      "bad_request",
      `not a store path or flake installable: ${JSON.stringify(value)} (expected /nix/store/<hash>-<name> or e.g. .#web)`,
    );
  }
  return { kind: "installable", installable: value };
}

/** nix 2.8 needs both features enabled for `nix build <flake>`; newer Nix accepts the flag too. */
const NIX_BUILD_FLAGS = ["--extra-experimental-features", "nix-command flakes"];

/**
 * Builds an installable and returns its one output path. `--json` rather than `--print-out-paths`,
 * which nix 2.8 does not have; the JSON shape (`[{drvPath, outputs: {out: path}}]`, or
 * `[{path}]` for a store path) is the same from 2.8 to 2.28.
 */
export async function buildInstallable(
  exec: Exec,
  installable: string,
  timeoutMs = 3_600_000,
): Promise<StorePath> {
  const r = await exec(["nix", ...NIX_BUILD_FLAGS, "build", "--no-link", "--json", installable], {
    timeoutMs,
  });
  if (r.code !== 0) {
    const reason = r.timedOut ? `timed out after ${Math.round(timeoutMs / 1000)} s` : lastLine(r.stderr);
    throw new HashdError("nix_failed", `nix build ${installable}: ${reason}`, {
      stderr: r.stderr.slice(-4000),
    });
  }
  const paths = parseBuildJson(r.stdout);
  if (paths.length !== 1) {
    throw new HashdError(
      "bad_request",
      `${installable} built ${paths.length} outputs (${paths.join(", ") || "none"}); deploy one service closure, e.g. ${installable}^out`,
    );
  }
  return parseStorePath(paths[0]);
}

export function parseBuildJson(text: string): string[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new HashdError("nix_failed", "nix build --json printed something that is not JSON");
  }
  if (!Array.isArray(data)) throw new HashdError("nix_failed", "nix build --json printed no list");
  const out: string[] = [];
  for (const item of data as { outputs?: Record<string, unknown>; path?: unknown }[]) {
    if (typeof item?.path === "string") out.push(item.path);
    for (const p of Object.values(item?.outputs ?? {})) if (typeof p === "string") out.push(p);
  }
  return [...new Set(out)];
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
