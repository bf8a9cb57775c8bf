/**
 * The Nix side writes the name patterns of src/model/names.ts again (Nix cannot import them): the
 * NixOS module's zone type and nix/hash-url.nix's zone and store-hash checks. They are compared as
 * text here, and hash-url.nix's zone check is run on probes with the real nix (`dummy://` store:
 * nothing is written). test/nixos-module-schema.test.ts runs the same probes through the module.
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CREDENTIAL_SERVICES_MAX } from "../src/model/config.ts";
import {
  CREDENTIAL_NAME_SOURCE,
  CREDENTIALS_MAX,
  isZone,
  PLAIN_PATH_SOURCE,
  SERVICE_NAME_SOURCE,
  STORE_HASH_SOURCE,
  ZONE_MAX_LENGTH,
  ZONE_SOURCE,
} from "../src/model/names.ts";
import { nixEvalJson } from "./nix-eval.ts";
import { ZONE_PROBES } from "./zone-probes.ts";

const ROOT = path.resolve(import.meta.dir, "..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");

/** The value of `name = "...";` in a Nix file, as Nix reads the string (only \\ and \" escapes here). */
function nixString(text: string, name: string): string {
  const m = new RegExp(`^\\s*${name} = "((?:[^"\\\\]|\\\\.)*)";`, "m").exec(text);
  if (!m) throw new Error(`no ${name} = "..." found`);
  return (m[1] as string).replace(/\\(.)/g, "$1");
}

function nixInt(text: string, name: string): number {
  const m = new RegExp(`^\\s*${name} = ([0-9]+);`, "m").exec(text);
  if (!m) throw new Error(`no ${name} = <integer> found`);
  return Number(m[1]);
}

describe("src/model/names.ts and the Nix side", () => {
  test("the probes reach both sides of the rule", () => {
    expect(ZONE_PROBES.filter(isZone).length).toBeGreaterThan(5);
    expect(ZONE_PROBES.filter((z) => !isZone(z)).length).toBeGreaterThan(5);
    expect(ZONE_PROBES.filter(isZone).map((z) => z.length)).toContain(ZONE_MAX_LENGTH);
  });

  test("the NixOS module's zone type has the same pattern and bound", () => {
    const module = read("nixos-module/default.nix");
    expect(nixString(module, "zonePattern")).toBe(ZONE_SOURCE);
    expect(nixInt(module, "zoneMaxLength")).toBe(ZONE_MAX_LENGTH);
  });

  test("service and credential names, and credential paths: the manifest's, the module's and the agent's", () => {
    const manifest = read("nix/manifest.nix");
    expect(nixString(manifest, "namePattern")).toBe(SERVICE_NAME_SOURCE);
    expect(nixString(manifest, "credentialPattern")).toBe(CREDENTIAL_NAME_SOURCE);
    expect(manifest).toContain(`length credentials > ${CREDENTIALS_MAX}`);
    const module = read("nixos-module/default.nix");
    expect(nixString(module, "serviceNamePattern")).toBe(SERVICE_NAME_SOURCE);
    expect(nixString(module, "credentialNamePattern")).toBe(CREDENTIAL_NAME_SOURCE);
    expect(nixInt(module, "credentialsMax")).toBe(CREDENTIALS_MAX);
    expect(nixInt(module, "credentialServicesMax")).toBe(CREDENTIAL_SERVICES_MAX);
    expect(nixString(module, "segments")).toBe(PLAIN_PATH_SOURCE);
  });

  test("nix/hash-url.nix has the same zone and store hash patterns", () => {
    const hashUrl = read("nix/hash-url.nix");
    expect(nixString(hashUrl, "zonePattern")).toBe(ZONE_SOURCE);
    expect(nixInt(hashUrl, "zoneMaxLength")).toBe(ZONE_MAX_LENGTH);
    expect(nixString(hashUrl, "hashPattern")).toBe(STORE_HASH_SOURCE);
  });

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "hashd-name-patterns-"));
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  test("mkHashUrl takes exactly the zones isZone takes", () => {
    const hashd = path.join(ROOT, "nix/hash-url.nix");
    const accepted = nixEvalJson(
      `let h = import ${hashd}; in map (zone: (builtins.tryEval (h.mkHashUrl { service = "/nix/store/${"0".repeat(32)}-x"; inherit zone; })).success) (builtins.fromJSON ${JSON.stringify(JSON.stringify(ZONE_PROBES))})`,
      scratch,
    ) as boolean[];
    expect(ZONE_PROBES.map((zone, i) => ({ zone, nix: accepted[i] }))).toEqual(
      ZONE_PROBES.map((zone) => ({ zone, nix: isZone(zone) })),
    );
  });
});
