/**
 * NixOS configurations with hashd's module, evaluated by nixpkgs' lib.evalModules over the stand-in
 * NixOS options of test/nixos/nixos-options.nix (through test/nixos/nixos.nix, a small
 * lib.nixosSystem), with Nix 2.8 and a store that stores nothing (test/nix-eval.ts).
 */
import { afterAll } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { nixEvalFailure, nixEvalJson } from "../nix-eval.ts";
import { REPO } from "./nixpkgs-lib.ts";

export const MODULE = path.join(REPO, "nixos-module");

/** nixpkgs has no hashd: this overlay gives the stand-in package set one, as hashd's overlay would. */
export const WITH_PACKAGE =
  '{ nixpkgs.overlays = [ (final: prev: { hashd = prev.standInPackage "hashd" "0.1.0" "hashd"; }) ]; }';

/** What a test looks at in an evaluated host (see `summaryExpr`). */
export interface HostSummary {
  /** messages of the failed assertions */
  failed: string[];
  /** how many assertions the configuration has */
  assertions: number;
  warnings: string[];
  /** /etc/hashd/config.json */
  json: string;
  /** hashd.service, as NixOS renders it */
  unit: string;
  tmpfiles: string[];
  tcp: number[];
  udp: number[];
  trusted: string[];
  packages: string[];
  package: string;
}

const summaryExpr = `{
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
  assertions = builtins.length c.assertions;
  warnings = c.warnings;
  json = c.environment.etc."hashd/config.json".source.drvAttrs.value;
  unit = c.systemd.units."hashd.service".text;
  tmpfiles = c.systemd.tmpfiles.rules;
  tcp = c.networking.firewall.allowedTCPPorts;
  udp = c.networking.firewall.allowedUDPPorts;
  trusted = c.nix.settings.extra-trusted-public-keys or [ ];
  packages = map (p: p.name) c.environment.systemPackages;
  package = c.services.hashd.package.outPath;
}`;

export class NixosEvaluator {
  readonly scratch = fs.mkdtempSync(path.join(os.tmpdir(), "hashd-nixos-eval-"));

  constructor(readonly libRoot: string) {
    afterAll(() => fs.rmSync(this.scratch, { recursive: true, force: true }));
  }

  /** An expression with `lib` (nixpkgs'), `nixos` (test/nixos/nixos.nix) and `c` (the config) in scope. */
  expr(modules: string[], body: string): string {
    return `let
      lib = import ${this.libRoot}/lib;
      nixos = import ${REPO}/test/nixos/nixos.nix { inherit lib; };
      sys = nixos { modules = [ ${MODULE} ${modules.map((m) => `(${m})`).join(" ")} ]; };
      c = sys.config;
    in ${body}`;
  }

  /** `body` evaluated in a host made of hashd's module (with a package) and `modules`. */
  eval<T = unknown>(modules: string[], body: string, withPackage = true): T {
    return nixEvalJson(
      this.expr(withPackage ? [WITH_PACKAGE, ...modules] : modules, body),
      this.scratch,
    ) as T;
  }

  /** The evaluation error of `body` (default: the system, as nixos-rebuild builds it). */
  failure(modules: string[], body = "c.system.build.toplevel", withPackage = true): string {
    return nixEvalFailure(this.expr(withPackage ? [WITH_PACKAGE, ...modules] : modules, body), this.scratch);
  }

  summary(...modules: string[]): HostSummary {
    return this.eval<HostSummary>(modules, summaryExpr);
  }

  /** Evaluates any expression with `lib` in scope. */
  raw<T = unknown>(body: string): T {
    return nixEvalJson(`let lib = import ${this.libRoot}/lib; in ${body}`, this.scratch) as T;
  }
}

/** The `Key=value` lines of one section of a unit file. */
export function unitSection(unit: string, section: string): string[] {
  const out: string[] = [];
  let current = "";
  for (const line of unit.split("\n")) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header) current = header[1] as string;
    else if (current === section && line.includes("=")) out.push(line);
  }
  return out;
}
