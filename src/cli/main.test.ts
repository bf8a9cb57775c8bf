import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { main } from "./main.ts";

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const missingSocket = ["--socket", "/nonexistent/hashd.sock"];

describe("cli", () => {
  test.each([
    [[], 1, /USAGE/],
    [["--help"], 0, /activate/],
    [["activate", "--help"], 0, /--lazy/],
    [["--version"], 0, /^\d+\.\d+\.\d+$/],
    [["alias"], 1, /history/],
    [["alias", "set", "--help"], 0, /atomic/],
  ])("%p prints usage or version", async (argv, code, pattern) => {
    const r = await run(argv);
    expect(r.code).toBe(code);
    expect(r.out).toMatch(pattern);
  });

  test("--version is package.json's (the flake's too)", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await run(["--version"])).out).toBe(version);
  });

  test.each([
    [["frobnicate"], 1, /unknown command "frobnicate"/],
    [["activate", "/etc/passwd", ...missingSocket], 2, /not a store path/],
    [["show", "xyz", ...missingSocket], 2, /not a store hash/],
    [
      ["activate", "/nix/store/0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6-x", "--timeout", "soon", ...missingSocket],
      2,
      /--timeout/,
    ],
    [["list", ...missingSocket], 8, /cannot reach the hashd agent/],
    [["alias", "frob"], 1, /unknown command "alias frob"/],
    [["alias", "set", "prod", ...missingSocket], 2, /expected name=<hash>/],
    [["alias", "set", ...missingSocket], 2, /one or more name=<hash>/],
    [["alias", "set", "a=x", "a=y", ...missingSocket], 2, /given twice/],
    [["alias", "list", ...missingSocket], 8, /cannot reach/],
    [["restart", ...missingSocket], 1, /NAME/],
    [["restart", "Bad_Name", ...missingSocket], 2, /neither a store hash/],
    [["restart", "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hye", ...missingSocket], 2, /malformed hash/],
    [["restart", "prod", "--host", "root@bad host", ...missingSocket], 2, /./],
    [["restart", "prod", ...missingSocket], 8, /cannot reach the hashd agent/],
  ])("%p fails with exit code %d", async (argv, code, pattern) => {
    const r = await run(argv);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(pattern);
  });

  test("--json errors are JSON on stdout too", async () => {
    const r = await run(["list", "--json", ...missingSocket]);
    expect(JSON.parse(r.out).error.code).toBe("unavailable");
  });
});
