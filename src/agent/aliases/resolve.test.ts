import { describe, expect, test } from "bun:test";
import { plainAliasRoute } from "../../model/alias-route.ts";
import { routeTarget } from "../ingress/route.ts";
import { classifyName, resolveName } from "./resolve.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const table: Record<string, string> = { prod: H, "api-2": "1c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6" };
const resolveAlias = (name: string) => table[name];

const NAMES = [
  H, // a hash
  "prod", // an alias
  "api-2",
  "staging", // no such alias
  H.slice(1), // 31 characters: an alias name, not a hash
  "e".repeat(32), // 32 characters outside nix-base32: a malformed hash
  `${H}0`, // 33 characters: an alias name
  "-x", // not a DNS label
  "x-",
  "a_b",
  "x".repeat(64),
];

describe("names are read as the ingress reads <name>.<zone>", () => {
  test.each(NAMES)("%s", (name) => {
    const mine = resolveName(name, resolveAlias);
    const ingress = routeTarget({ host: `${name}.test`, target: "/" }, "test", {
      resolveAlias: (a) => {
        const h = resolveAlias(a);
        return h === undefined ? undefined : plainAliasRoute(h);
      },
    });
    if (mine.ok) {
      expect(ingress).toMatchObject({ ok: true, hash: mine.hash, via: mine.alias ? "alias" : "host" });
    } else {
      expect(ingress).toMatchObject({ ok: false, status: mine.reason === "malformed" ? 400 : 404 });
    }
  });

  test("each kind", () => {
    expect(classifyName(H)).toEqual({ kind: "hash", hash: H });
    expect(classifyName("prod")).toEqual({ kind: "alias", alias: "prod" });
    expect(classifyName("e".repeat(32))).toEqual({ kind: "bad-hash", name: "e".repeat(32) });
    expect(classifyName("Prod")).toEqual({ kind: "bad-name", name: "Prod" });
    expect(resolveName("prod", resolveAlias)).toEqual({ ok: true, hash: H, alias: "prod" });
    expect(resolveName(H, () => undefined)).toEqual({ ok: true, hash: H, alias: null });
    expect(resolveName("staging", resolveAlias)).toEqual({
      ok: false,
      reason: "unknown-alias",
      message: "no alias named staging",
    });
    const long = resolveName("X".repeat(300), resolveAlias);
    expect(long.ok).toBe(false);
    if (!long.ok) expect(long.message.length).toBeLessThan(250); // quoted, cut at 80 characters
  });
});
