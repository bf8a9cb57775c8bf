import { describe, expect, test } from "bun:test";
import { HashdError } from "../lib/errors.ts";
import { isStoreHash } from "../model/names.ts";
import { parseStoreHash, parseStorePath } from "./store-path.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";

describe("parseStorePath", () => {
  test("accepts a top-level store path", () => {
    expect(parseStorePath(`/nix/store/${H}-hello-2.12`)).toEqual({
      path: `/nix/store/${H}-hello-2.12`,
      hash: H,
      name: "hello-2.12",
    });
  });

  test.each([
    ["not a string", 42],
    ["empty", ""],
    ["relative", `nix/store/${H}-x`],
    ["other store dir", `/gnu/store/${H}-x`],
    ["short hash", `/nix/store/${H.slice(1)}-x`],
    ["long hash", `/nix/store/${H}a-x`],
    ["e is not nix-base32", `/nix/store/${H.slice(0, 31)}e-x`],
    ["upper case", `/nix/store/${H.toUpperCase()}-x`],
    ["no name", `/nix/store/${H}`],
    ["empty name", `/nix/store/${H}-`],
    ["sub-path", `/nix/store/${H}-x/bin/sh`],
    ["trailing slash", `/nix/store/${H}-x/`],
    ["dot dot", `/nix/store/${H}-x/../../etc`],
    ["leading dot name", `/nix/store/${H}-.x`],
    ["newline", `/nix/store/${H}-x\n[Service]`],
    ["space", `/nix/store/${H}-x y`],
    ["unit syntax", `/nix/store/${H}-x;ExecStart=/bin/sh`],
  ])("refuses %s", (_, value) => {
    expect(() => parseStorePath(value)).toThrow(HashdError);
    try {
      parseStorePath(value);
    } catch (e) {
      expect((e as HashdError).code).toBe("bad_request");
      expect((e as HashdError).message).toContain("not a store path");
    }
  });
});

describe("parseStoreHash", () => {
  test("accepts 32 nix-base32 characters", () => {
    expect(parseStoreHash(H)).toBe(H);
    expect(isStoreHash(H)).toBe(true);
  });
  test.each([
    "",
    H.slice(0, 31),
    `${H}0`,
    H.replace("0", "e"),
    H.replace("0", "u"),
    H.replace("0", "-"),
    "../etc/passwd",
  ])("refuses %p", (value) => {
    expect(isStoreHash(value)).toBe(false);
    expect(() => parseStoreHash(value)).toThrow(/not a store hash/);
  });
});
