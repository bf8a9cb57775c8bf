# A stand-in for nixpkgs' package set, enough to evaluate nixos-module/default.nix, flake.nix and the
# README's examples with nixpkgs' real lib (these machines have its lib, not the rest of nixpkgs).
#
# - Packages are derivations that are never built: real store paths (computed by Nix, also with
#   --store dummy://), nothing inside. `hashd` is deliberately absent, as in nixpkgs.
# - formats.json is nixpkgs' (pkgs/pkgs-lib/formats.nix): the same type, and the same derivation
#   attributes (`value` holds builtins.toJSON of the settings; nixpkgs runs jq on it).
# - stdenvNoCC.mkDerivation and mkShell return a derivation-shaped attribute set without building or
#   reading `src` (reading flake.nix's src would copy the repository into a store; its filter,
#   nix/source-filter.nix, is evaluated on its own by test/architecture.test.ts).
# - callPackage of a path that does not exist gives a package named after it: the README's
#   `pkgs.callPackage ./api { }` stands for the reader's own programs.
# - testers.runNixOSTest evaluates each node with lib.evalModules (./nixos-options.nix,
#   ./vm-node-options.nix and the node's modules) and returns the nodes and the test script; it does
#   not build VMs or run the script.
# - The set is a fixed point with overlays, as nixpkgs is, so nixpkgs.overlays work.
{
  lib,
  system ? "x86_64-linux",
  overlays ? [ ],
}:
let
  fake =
    name: extra:
    builtins.derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [
        "-c"
        "echo stand-in package: never built >&2; exit 1"
      ];
    }
    // extra;
  package =
    pname: version: mainProgram:
    fake "${pname}-${version}" {
      inherit pname version;
      meta = {
        inherit mainProgram;
      };
    };
  # a derivation holding `attrs` as its inputs, as runCommand and writeText make
  derivationWith =
    name: attrs:
    builtins.derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-c"
          "exit 1"
        ];
      }
      // attrs
    );

  base = final: {
    inherit lib;
    path = ./.;
    # for tests that need a package nixpkgs does not have (hashd): standInPackage pname version mainProgram
    standInPackage = package;
    stdenv.hostPlatform = {
      inherit system;
      isLinux = true;
    };
    stdenvNoCC = {
      mkDerivation =
        args:
        fake "${args.pname}-${args.version}" {
          inherit (args) pname version;
          meta = args.meta or { };
          passthru = args.passthru or { };
        }
        // (args.passthru or { });
    };
    mkShell = args: fake "nix-shell" { inherit (args) packages; };
    callPackage =
      fn: args:
      if builtins.isPath fn && !builtins.pathExists fn then
        package (baseNameOf fn) "0" (baseNameOf fn)
      else
        let
          f = if builtins.isPath fn then import fn else fn;
        in
        f (builtins.intersectAttrs (builtins.functionArgs f) final // args);
    writeText = name: text: derivationWith name { inherit text; passAsFile = [ "text" ]; };
    runCommand = name: env: script: derivationWith name (env // { buildCommand = script; });
    formats.json =
      { }:
      {
        type =
          let
            valueType =
              with lib.types;
              nullOr (oneOf [
                bool
                int
                float
                str
                path
                (attrsOf valueType)
                (listOf valueType)
              ])
              // {
                description = "JSON value";
              };
          in
          valueType;
        generate =
          name: value:
          derivationWith name {
            value = builtins.toJSON value;
            passAsFile = [ "value" ];
            preferLocalBuild = true;
          };
      };
    testers.runNixOSTest =
      test:
      let
        # nixos/lib/testing/network.nix: nodes in name order on 192.168.1.1, .2, ...
        names = builtins.attrNames test.nodes;
        evalNode =
          name: module:
          lib.evalModules {
            modules = [
              ./nixos-options.nix
              ./vm-node-options.nix
              (test.defaults or { })
              module
              {
                networking.hostName = name;
                networking.primaryIPAddress = "192.168.1.${toString (lib.lists.findFirstIndex (n: n == name) null names + 1)}";
                _module.args.pkgs = final;
                _module.args.nodes = builtins.mapAttrs (_: node: node.config) nodes;
              }
            ];
          };
        nodes = builtins.mapAttrs evalNode test.nodes;
      in
      fake "vm-test-run-${test.name}" {
        inherit nodes;
        testScript = if builtins.isFunction test.testScript then test.testScript { inherit nodes; } else test.testScript;
      };

    bash = package "bash" "5.3" "bash";
    coreutils = package "coreutils" "9.7" "ls";
    findutils = package "findutils" "4.10.0" "find";
    gnugrep = package "gnugrep" "3.12" "grep";
    gnused = package "gnused" "4.9" "sed";
    systemd = package "systemd" "258" "systemctl";
    nix = package "nix" "2.31" "nix";
    openssh = package "openssh" "10.0" "ssh";
    curl = package "curl" "8.14" "curl";
    jq = package "jq" "1.8" "jq";
    python3 = package "python3" "3.13" "python3";
    bun = package "bun" "1.2" "bun";
    nodejs = package "nodejs" "24" "node";
    nil = package "nil" "2025" "nil";
    nixfmt = package "nixfmt" "1.0" "nixfmt";
    makeBinaryWrapper = package "make-binary-wrapper-hook" "0" "makeWrapper";
  };
in
lib.fix (lib.foldl' (lib.flip lib.extends) base overlays)
