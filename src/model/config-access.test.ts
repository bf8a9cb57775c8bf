import { describe, expect, test } from "bun:test";
import { hashUrlAccess, parseConfig } from "./config.ts";

const GOSSIP = { gossip: { keyFile: "/etc/hashd/cluster.key" } };

describe("config: access (private previews)", () => {
  test("hash URLs are public alone and aliased in a cluster unless said otherwise", () => {
    expect(hashUrlAccess(parseConfig({}))).toBe("public");
    expect(hashUrlAccess(parseConfig(GOSSIP))).toBe("aliased");
    for (const mode of ["public", "aliased", "token"] as const) {
      expect(hashUrlAccess(parseConfig({ access: { hashUrls: mode } }))).toBe(mode);
      expect(hashUrlAccess(parseConfig({ ...GOSSIP, access: { hashUrls: mode } }))).toBe(mode);
    }
    expect(parseConfig({}).access).toEqual({});
  });

  test.each([
    [{ hashUrls: "private" }, "access.hashUrls"],
    [{ hashUrls: "Public" }, "access.hashUrls"],
    [{ bypassTokenFile: "token" }, "access.bypassTokenFile"],
    [{ bypassTokenFile: "/tmp/token" }, "PrivateTmp"],
    [{ bypassTokenFile: `/nix/store/${"0".repeat(32)}-token` }, "Nix store"],
    [{ bypassTokenFile: "/run/keys/a token" }, "access.bypassTokenFile"],
    [{ bypassToken: "inline-secret" }, "access"],
  ])("refuses %j", (access, where) => {
    expect(() => parseConfig({ access })).toThrow(where);
  });

  test("takes a plain absolute token file", () => {
    expect(parseConfig({ access: { bypassTokenFile: "/run/keys/hashd-bypass" } }).access).toEqual({
      bypassTokenFile: "/run/keys/hashd-bypass",
    });
  });
});
