import { describe, expect, test } from "bun:test";
import { ZONE_PROBES } from "../../test/zone-probes.ts";
import { ingressConfig } from "../agent/ingress/config.ts";
import { parseConfig } from "./config.ts";
import { isAliasName, isDnsLabel, isStoreHash, isZone, ZONE_MAX_LENGTH } from "./names.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";

describe("names", () => {
  test("store hashes: 32 characters of nix-base32", () => {
    expect(isStoreHash(H)).toBe(true);
    for (const bad of [H.slice(1), `${H}0`, H.replace("0", "e"), H.toUpperCase(), ""])
      expect(isStoreHash(bad)).toBe(false);
  });

  test("alias names: DNS labels that are not store hashes", () => {
    for (const ok of ["prod", "pr-42", "a", "x".repeat(63), "e".repeat(32)])
      expect(isAliasName(ok)).toBe(true);
    for (const bad of [H, "x".repeat(64), "-a", "a-", "Prod", "a.b", "", 42, null])
      expect(isAliasName(bad)).toBe(false);
    expect(isDnsLabel(H)).toBe(true);
  });

  test("zones: labels of 1-63, at most 220 characters, so that <hash>.<zone> is a DNS name", () => {
    expect(ZONE_MAX_LENGTH + H.length + 1).toBe(253);
    expect(isZone("localhost")).toBe(true);
    expect(isZone(`${"x".repeat(63)}.y`)).toBe(true);
    expect(isZone(`${"x".repeat(64)}.y`)).toBe(false);
  });

  test("the agent's config and the ingress take the same zones", () => {
    const agent = (zone: string) => {
      try {
        parseConfig({ zone });
        return true;
      } catch {
        return false;
      }
    };
    // the ingress also lower-cases and drops a trailing dot first, as a Host header may carry them
    const ingress = (zone: string) => {
      try {
        return ingressConfig({ zone }).zone === zone;
      } catch {
        return false;
      }
    };
    for (const zone of ZONE_PROBES)
      expect({ zone, agent: agent(zone), ingress: ingress(zone) }).toEqual({
        zone,
        agent: isZone(zone),
        ingress: isZone(zone),
      });
  });
});
