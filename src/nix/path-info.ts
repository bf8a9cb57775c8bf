import { HashdError } from "../lib/errors.ts";

export interface PathInfo {
  path: string;
  references: string[];
  signatures: string[];
}

/**
 * `nix path-info --json` prints an array of objects with a `path` field up to Nix 2.18, and an
 * object keyed by store path from Nix 2.19 on (references stay full paths in both). Accept both.
 */
export function parsePathInfoJson(text: string): Map<string, PathInfo> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new HashdError("nix_failed", "nix path-info printed something that is not JSON");
  }
  const entries: [string, Record<string, unknown>][] = Array.isArray(data)
    ? data.map((item) => [String((item as { path?: unknown }).path), item as Record<string, unknown>])
    : typeof data === "object" && data !== null
      ? Object.entries(data as Record<string, Record<string, unknown>>)
      : [];
  const out = new Map<string, PathInfo>();
  for (const [path, info] of entries) {
    // Newer Nix reports an invalid path as `"<path>": null`.
    if (!info || typeof info !== "object") continue;
    out.set(path, {
      path,
      references: stringArray(info.references),
      signatures: stringArray(info.signatures),
    });
  }
  return out;
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}
