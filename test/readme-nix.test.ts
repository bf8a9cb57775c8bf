/**
 * The README's Nix examples and the flake's outputs, evaluated with nixpkgs' real lib and a stated
 * stand-in for the rest of nixpkgs (test/nixos/nixpkgs.nix: lib.nixosSystem over the stand-in NixOS
 * options of test/nixos/nixos-options.nix, and the package set of test/nixos/pkgs.nix).
 *
 * - Every ```nix block of README.md is a flake and is evaluated as written: its `nixpkgs` input is
 *   the stand-in, its `hashd` input is this repository's flake.nix (evaluated with the same
 *   stand-in), and what the block names next to it (./configuration.nix, ./api, ./web) are
 *   stand-ins too (an empty module; packages named after them). A block whose outputs this test
 *   does not know how to check fails it.
 * - The README's option table is the module's option docs (lib.optionAttrSetToDocList).
 * - flake.nix: lib.mkService wants pkgs, overlays.default gives pkgs.hashd to a module imported by
 *   path, checks.<system>.module-unit evaluates, and checks.<system>.vm's nodes evaluate (no failed
 *   assertion, configs the agent accepts) and its test script is Python that names only what the
 *   NixOS test driver defines. Nothing is built and no VM runs here.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { configSchema } from "../src/model/config.ts";
import { parseManifestText } from "../src/model/manifest.ts";
import { nixEvalFailure, nixEvalJson } from "./nix-eval.ts";
import { NixosEvaluator } from "./nixos/evaluate.ts";
import { nixpkgsLib, REPO } from "./nixos/nixpkgs-lib.ts";

const LIB = nixpkgsLib("the README and flake evaluation tests (test/readme-nix.test.ts)");
const nixos = LIB ? new NixosEvaluator(LIB) : undefined;
const scratch = () => (nixos as NixosEvaluator).scratch;

const README = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
const blocks = [...README.matchAll(/^```nix\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);

/** `body` with `lib`, `nixpkgs` (the stand-in), `hashd` (this flake) and, for a block, `flake` and `self`. */
function withFlakes(body: string, dir?: string): string {
  const block = dir
    ? `flake = import ${dir}/flake.nix;
       self = flake.outputs { inherit self nixpkgs hashd; } // { outPath = "${dir}"; inherit (flake) inputs; };`
    : "";
  return `let
    lib = import ${LIB}/lib;
    nixpkgs = import ${REPO}/test/nixos/nixpkgs.nix { inherit lib; };
    hashd = (import ${REPO}/flake.nix).outputs { self = hashd; inherit nixpkgs; } // { outPath = "${REPO}"; };
    ${block}
    summary = sys: let c = sys.config; in {
      toplevel = c.system.build.toplevel;
      warnings = c.warnings;
      json = c.environment.etc."hashd/config.json".source.drvAttrs.value or null;
      unit = c.systemd.units."hashd.service".text or null;
      package = c.services.hashd.package.name or null;
    };
  in ${body}`;
}
const evalNix = <T>(body: string, dir?: string): T => nixEvalJson(withFlakes(body, dir), scratch()) as T;

interface SystemSummary {
  toplevel: string;
  warnings: string[];
  json: string | null;
  unit: string | null;
  package: string;
}

/** Checks a NixOS system that runs hashd: it builds (no failed assertion), quietly, as the agent wants. */
function expectHashdHost(s: SystemSummary): void {
  expect(s.toplevel).toBe("toplevel");
  expect(s.warnings).toEqual([]);
  const json = JSON.parse(s.json as string);
  expect(configSchema.parse(json)).toEqual(json);
  expect(s.unit).toContain(`-${s.package}/bin/hashd serve --config /etc/hashd/config.json`);
}

describe.skipIf(!LIB)("the README's Nix examples, evaluated as written", () => {
  test("there are examples, each a flake that follows the host's nixpkgs", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
  });

  test.each(blocks.map((b, i) => [i + 1, b] as const))("```nix block %d", (n, text) => {
    const dir = path.join(scratch(), `readme-${n}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "flake.nix"), text);
    // stand-in for "the rest of your host"
    fs.writeFileSync(path.join(dir, "configuration.nix"), "{ }\n");
    const shape = evalNix<{ inputs: Record<string, unknown>; outputs: string[] }>(
      '{ inputs = flake.inputs; outputs = builtins.attrNames (builtins.removeAttrs self [ "outPath" "inputs" ]); }',
      dir,
    );
    expect(shape.inputs).toMatchObject({
      hashd: { url: expect.stringMatching(/^github:/), inputs: { nixpkgs: { follows: "nixpkgs" } } },
    });
    expect(shape.outputs.filter((o) => o !== "nixosConfigurations" && o !== "packages")).toEqual([]);

    if (shape.outputs.includes("nixosConfigurations")) {
      const hosts = evalNix<Record<string, SystemSummary>>(
        "builtins.mapAttrs (_: summary) self.nixosConfigurations",
        dir,
      );
      expect(Object.keys(hosts).length).toBeGreaterThan(0);
      for (const s of Object.values(hosts)) {
        expectHashdHost(s);
        // the package the flake's module builds with the host's pkgs
        expect(s.package).toBe("hashd-0.1.0");
      }
    }
    if (shape.outputs.includes("packages")) {
      const services = evalNix<
        Record<string, { name: string; drv: string; builder: string; bash: string; manifest: string }>
      >(
        `builtins.mapAttrs (_: s: {
          inherit (s) name;
          drv = s.drvPath;
          builder = s.drvAttrs.builder;
          bash = nixpkgs.legacyPackages.x86_64-linux.bash.outPath;
          manifest = s.drvAttrs.manifest;
        }) self.packages.x86_64-linux`,
        dir,
      );
      expect(Object.keys(services).length).toBeGreaterThan(0);
      for (const s of Object.values(services)) {
        expect(s.drv).toMatch(/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-.*\.drv$/);
        // built with nixpkgs' bash, not the host's /bin/sh
        expect(s.builder).toBe(`${s.bash}/bin/sh`);
        const manifest = parseManifestText(s.manifest);
        expect(manifest.name).toBe(s.name);
        for (const url of Object.values(manifest.environment).filter((v) => v.startsWith("http")))
          expect(url).toMatch(/^http:\/\/[0-9a-df-np-sv-z]{32}\.[a-z0-9.-]+\/$/);
      }
    }
  });

  test("the option table is the module's option docs", () => {
    // a default is `<Nix expression>`, or Markdown text as it is (lib.literalMD)
    const docs = evalNix<{ name: string; type: string; default: string }[]>(
      `let sys = nixpkgs.lib.nixosSystem { modules = [ hashd.nixosModules.default ]; }; in
       map (o: { inherit (o) name type;
                 default = if o.default._type or "" == "literalMD" then o.default.text else "\`\${o.default.text}\`"; })
         (builtins.filter (o: o.visible && !o.internal) (lib.optionAttrSetToDocList sys.options.services.hashd))`,
    );
    const rows = [...README.matchAll(/^\| `(services\.hashd\.[^`]+)` \| (.+?) \| ([^|]+) \|$/gm)].map(
      (m) => ({
        name: m[1] as string,
        type: m[2] as string,
        default: m[3] as string,
      }),
    );
    const sort = <T extends { name: string }>(l: T[]) => [...l].sort((a, b) => a.name.localeCompare(b.name));
    expect(sort(rows)).toEqual(sort(docs));
  });
});

describe.skipIf(!LIB)("flake.nix, evaluated with the stand-in nixpkgs", () => {
  test("lib.mkService without pkgs says to pass it", () => {
    const error = nixEvalFailure(
      withFlakes('(hashd.lib.mkService { name = "web"; exec = [ "/bin/web" ]; }).drvPath'),
      scratch(),
    );
    expect(error.replace(/\s+/g, " ")).toContain(
      "hashd.lib.mkService (web): pass `pkgs`, the nixpkgs to build with (e.g. `inherit pkgs;` with " +
        "pkgs = nixpkgs.legacyPackages.x86_64-linux): the closure is built with its bash and coreutils.",
    );
  });

  test("the module imported by path, with the flake's overlay for pkgs.hashd", () => {
    const s = evalNix<SystemSummary>(`summary (nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ "\${hashd}/nixos-module" {
        nixpkgs.overlays = [ hashd.overlays.default ];
        services.hashd.enable = true;
      } ];
    })`);
    expectHashdHost(s);
    expect(s.package).toBe("hashd-0.1.0");
  });

  test("checks.<system>.module-unit and module-config evaluate", () => {
    const r = evalNix<{ unit: string; config: string }>(
      `let c = hashd.checks.x86_64-linux; in { unit = c.module-unit.drvAttrs.text; config = c.module-config.drvAttrs.value; }`,
    );
    expect(r.unit).toContain("LoadCredential=cluster-key:/run/keys/hashd-cluster");
    expect(configSchema.parse(JSON.parse(r.config)).gossip?.seeds).toEqual(["10.0.0.2:7946"]);
  });

  test("formatter and dev shell use nixfmt (nixfmt-rfc-style is deprecated)", () => {
    const r = evalNix<{ formatter: string; shell: string[] }>(
      `{ formatter = hashd.formatter.x86_64-linux.name;
         shell = map (p: p.name) hashd.devShells.x86_64-linux.default.packages; }`,
    );
    expect(r.formatter).toStartWith("nixfmt-");
    expect(r.shell.filter((p) => p.startsWith("nixfmt"))).toEqual([r.formatter]);
  });

  test("checks.<system>.vm: its nodes evaluate and its test script is Python for the NixOS test driver", () => {
    const vm = evalNix<{
      nodes: Record<string, SystemSummary & { hashd: boolean }>;
      deployer: string[];
      script: string;
    }>(`let vm = hashd.checks.x86_64-linux.vm; in {
      nodes = builtins.mapAttrs (_: n: summary n // { hashd = n.config.services.hashd.enable or false; }) vm.nodes;
      deployer = map (p: p.name) vm.nodes.deployer.config.environment.systemPackages;
      script = vm.testScript;
    }`);
    expect(Object.keys(vm.nodes).sort()).toEqual(["deployer", "web1", "web2"]);
    for (const name of ["web1", "web2"]) {
      const node = vm.nodes[name] as SystemSummary & { hashd: boolean };
      expectHashdHost(node);
      const json = JSON.parse(node.json as string);
      expect(json.gossip.keyFile).toBe("/run/credentials/hashd.service/cluster-key");
      expect(json.gossip.seeds).toHaveLength(2);
    }
    expect(vm.nodes.deployer?.hashd).toBe(false);
    expect(vm.deployer).toContain("hashd-0.1.0");

    // Names the script uses that neither it nor the test driver (test_driver/driver.py,
    // test_symbols) defines, and machine methods the driver's Machine does not have.
    const check = `
import ast, builtins, json, sys
src = sys.stdin.read()
tree = ast.parse(src)
machines = set(json.loads(sys.argv[1]))
driver = {"start_all", "test_script", "machines_qemu", "machines_nspawn", "vlans", "driver", "log", "os",
          "create_machine", "subtest", "run_tests", "join_all", "retry", "serial_stdout_off",
          "serial_stdout_on", "polling_condition", "BaseMachine", "t", "debug", "vlan1"}
methods = {"start", "shutdown", "crash", "succeed", "fail", "execute", "wait_for_unit", "wait_for_open_port",
           "wait_for_closed_port", "wait_until_succeeds", "wait_until_fails", "wait_for_file", "systemctl",
           "get_unit_info", "require_unit_state", "copy_from_host", "wait_for_shutdown", "log"}
defined = set(dir(builtins)) | driver | machines
for node in ast.walk(tree):
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        defined.add(node.id)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        defined.add(node.name)
    elif isinstance(node, ast.arg):
        defined.add(node.arg)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
undefined = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - defined)
calls = sorted({n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Name) and n.func.value.id in machines | {"h"}} - methods)
print(json.dumps({"undefined": undefined, "unknownMethods": calls}))
`;
    const r = spawnSync("python3", ["-c", check, JSON.stringify(Object.keys(vm.nodes))], {
      input: vm.script,
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ undefined: [], unknownMethods: [] });
  });
});
