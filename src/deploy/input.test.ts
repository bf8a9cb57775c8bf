import { describe, expect, test } from "bun:test";
import type { Exec } from "../lib/exec.ts";
import { buildInstallable, classifyInput, parseBuildJson } from "./input.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const P = `/nix/store/${H}-web-1`;

describe("classifyInput", () => {
  test("a top-level store path is a path", () => {
    expect(classifyInput(P)).toEqual({ kind: "path", path: { path: P, hash: H, name: "web-1" } });
  });

  test.each([
    ".#web",
    "github:org/repo#web",
    "./result",
    "path:/srv/flake#web",
    `/nix/store/${H}-web.drv^out`,
    "nixpkgs#hello",
  ])("%p is an installable", (value) => {
    expect(classifyInput(value)).toEqual({ kind: "installable", installable: value });
  });

  test.each([
    ["sub-path of a store path", `${P}/bin/web`, /not a store path/],
    ["bad hash under /nix/store", "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x", /not a store path/],
    ["dot dot", `${P}/../../etc`, /not a store path/],
    ["derivation", `/nix/store/${H}-web.drv`, /is a derivation/],
    ["option", "--impure", /not a store path or flake installable/],
    ["empty", "", /not a store path or flake installable/],
    ["newline", ".#web\n--impure", /not a store path or flake installable/],
    ["space", ".#web --impure", /not a store path or flake installable/],
  ])("refuses a %s", (_, value, message) => {
    expect(() => classifyInput(value)).toThrow(message);
  });
});

describe("building an installable", () => {
  test("nix 2.8 and newer print the same --json shape; a store path installable prints {path}", () => {
    expect(
      parseBuildJson(JSON.stringify([{ drvPath: `/nix/store/${H}-web.drv`, outputs: { out: P } }])),
    ).toEqual([P]);
    expect(parseBuildJson(JSON.stringify([{ path: P }]))).toEqual([P]);
    expect(() => parseBuildJson("building...")).toThrow(/not JSON/);
  });

  test("runs nix build with flakes enabled, the installable as one argument", async () => {
    const calls: string[][] = [];
    const exec: Exec = async (argv) => {
      calls.push(argv);
      return { code: 0, stdout: JSON.stringify([{ outputs: { out: P } }]), stderr: "", timedOut: false };
    };
    expect((await buildInstallable(exec, ".#web")).hash).toBe(H);
    expect(calls).toEqual([
      ["nix", "--extra-experimental-features", "nix-command flakes", "build", "--no-link", "--json", ".#web"],
    ]);
  });

  test("a failed build is nix_failed with Nix's last line; several outputs are refused", async () => {
    const failing: Exec = async () => ({
      code: 1,
      stdout: "",
      stderr: "error: flake has no attribute web",
      timedOut: false,
    });
    await expect(buildInstallable(failing, ".#web")).rejects.toMatchObject({
      code: "nix_failed",
      message: "nix build .#web: error: flake has no attribute web",
    });
    const two: Exec = async () => ({
      code: 0,
      stdout: JSON.stringify([{ outputs: { out: P, doc: `/nix/store/${H.replace("0", "1")}-web-doc` } }]),
      stderr: "",
      timedOut: false,
    });
    await expect(buildInstallable(two, ".#web")).rejects.toMatchObject({ code: "bad_request" });
  });
});
