import { existsSync } from "node:fs";
import { open } from "node:fs/promises";
import { HashdError } from "../../lib/errors.ts";
import {
  MANIFEST_MAX_BYTES,
  MANIFEST_RELATIVE_PATH,
  type Manifest,
  parseManifestText,
} from "../../model/manifest.ts";
import type { Nix } from "../../nix/nix.ts";
import { parseStorePath } from "../../nix/store-path.ts";

/** Reads <path>/hashd/service.json, at most MANIFEST_MAX_BYTES + 1 bytes, and validates it. */
export async function readManifest(path: string): Promise<Manifest> {
  const file = `${path}/${MANIFEST_RELATIVE_PATH}`;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch {
    throw new HashdError(
      "bad_request",
      `${path} is not a service closure: it has no ${MANIFEST_RELATIVE_PATH}`,
    );
  }
  try {
    const buf = Buffer.alloc(MANIFEST_MAX_BYTES + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return parseManifestText(buf.subarray(0, bytesRead).toString("utf8"), `manifest of ${path}`);
  } finally {
    await handle.close();
  }
}

/**
 * The service closures among a closure's direct Nix references: the dependency edges. A
 * `lib.mkHashUrl backend` in a frontend's environment makes the backend such a reference.
 */
export async function serviceRefs(nix: Nix, path: string): Promise<string[]> {
  const refs = await nix.references(path);
  return refs
    .filter((ref) => existsSync(`${ref}/${MANIFEST_RELATIVE_PATH}`))
    .map((ref) => parseStorePath(ref).hash);
}
