import { expect, test } from "bun:test";
import { parsePathInfoJson } from "./path-info.ts";

const A = "/nix/store/0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6-frontend";
const B = "/nix/store/1b8m3f6zsn4sbf1kjc0yvsl9iwyc7xg1-backend";

// Shapes printed by real Nix: 2.8 (Debian) prints an array, 2.19 and later an object keyed by path.
const nix28 = JSON.stringify([
  { path: A, narHash: "sha256-x", narSize: 1, references: [A, B], signatures: ["k:sig"], valid: true },
]);
const nix224 = JSON.stringify({
  [A]: { narHash: "sha256-x", narSize: 1, references: [A, B], signatures: ["k:sig"] },
  "/nix/store/00000000000000000000000000000000-missing": null,
});

test.each([
  ["nix 2.8 array", nix28],
  ["nix 2.19+ object", nix224],
])("parses %s", (_, text) => {
  const info = parsePathInfoJson(text);
  expect(info.get(A)).toEqual({ path: A, references: [A, B], signatures: ["k:sig"] });
});

test("newer Nix's null entries for invalid paths are skipped", () => {
  expect(parsePathInfoJson(nix224).size).toBe(1);
});

test("refuses output that is not JSON", () => {
  expect(() => parsePathInfoJson("error: path is not valid")).toThrow(/not JSON/);
});
