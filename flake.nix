{
  description = "hashd: each version of each service is a Nix closure, run as its own socket-activated systemd unit and reached at http://<hash>.<zone>/";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  # What runs where hashd is developed (Debian's Nix 2.8, nixpkgs' lib but not the rest of nixpkgs,
  # no binary cache): test/readme-nix.test.ts evaluates this file's outputs with nixpkgs' real lib and
  # a stand-in for the rest of nixpkgs (test/nixos/: lib.nixosSystem, the packages the module and
  # checks use, testers.runNixOSTest). That covers nixosModules.default, overlays.default, lib,
  # checks.<system>.module-unit and the evaluation of checks.<system>.vm's nodes and test script. The
  # module itself is tested with the real module system in test/nixos-module.test.ts, and the unit it
  # generates runs the real agent on systemd 252 there. The pieces the package is built from were
  # tested too: nix/lib.nix and nix/example (built, references checked, served under systemd socket
  # activation), and the node_modules hash, which test/flake-node-modules.test.ts recomputes from
  # bun.lock and has Nix 2.8 build with the same nix/node-modules.sh (with the machine's bun 1.4.5,
  # not nixpkgs' bun: see nix/node-modules.sh for why the tree does not depend on bun's version).
  # Not run there: anything that builds with nixpkgs (the package, the example on nixpkgs' python3)
  # and checks.<system>.vm, which needs VMs: `nix flake check` on a NixOS machine runs them.
  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      hashdLib = import ./nix/lib.nix { };
      systemOf = pkgs: pkgs.stdenv.hostPlatform.system;
      version = (lib.importJSON ./package.json).version;

      # Only what the build reads (nix/source-filter.nix): editing docs, tests, simulators or
      # benchmarks does not change the hashes.
      src = lib.cleanSourceWith {
        name = "hashd-source";
        src = ./.;
        filter = import ./nix/source-filter.nix { inherit lib; } ./.;
      };
      # What node_modules is made from: the lockfile and the one script that installs it.
      lockSrc = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [ ./package.json ./bun.lock ./bunfig.toml ./nix/node-modules.sh ];
      };

      hashdFor = pkgs:
        let
          # `bun install` needs the network, so node_modules is a fixed-output derivation, as nixpkgs
          # does for Bun programs (e.g. pkgs/by-name/op/opencode). Its output is made deterministic
          # by nix/node-modules.sh (runtime dependencies only, plain JavaScript, so one hash for
          # every system; nothing a package manager adds; no executable bits), and its hash is
          # computed from bun.lock by `bun scripts/node-modules-hash.ts --write`, which runs the same
          # script and `nix hash path`; test/flake-node-modules.test.ts fails when bun.lock and this
          # hash disagree. Without that check a stale hash would go unnoticed wherever the old
          # output is still in the store (Nix does not rebuild a fixed-output path it has).
          nodeModules = pkgs.stdenvNoCC.mkDerivation {
            pname = "hashd-node-modules";
            inherit version;
            src = lockSrc;
            nativeBuildInputs = [ pkgs.bun ];
            impureEnvVars = lib.fetchers.proxyImpureEnvVars ++ [ "GIT_PROXY_COMMAND" "SOCKS_SERVER" ];
            dontConfigure = true;
            dontBuild = true;
            installPhase = ''
              runHook preInstall
              bash nix/node-modules.sh $out
              runHook postInstall
            '';
            # a fixed-output derivation must not refer to store paths (patchShebangs would add some)
            dontFixup = true;
            outputHashMode = "recursive";
            outputHashAlgo = "sha256";
            outputHash = "sha256-5rReGEpqN5n5I++VW5SCo9wWLOxnxvQuJ5dNZFCe4/I="; # bun scripts/node-modules-hash.ts --write
          };
        in
        pkgs.stdenvNoCC.mkDerivation {
          pname = "hashd";
          inherit version src;
          nativeBuildInputs = [ pkgs.bun pkgs.makeBinaryWrapper ];
          configurePhase = ''
            runHook preConfigure
            cp -R ${nodeModules}/node_modules .
            runHook postConfigure
          '';
          buildPhase = ''
            runHook preBuild
            export HOME=$TMPDIR
            bun build --compile --minify --sourcemap --outfile dist/hashd src/cli.ts
            runHook postBuild
          '';
          installPhase = ''
            runHook preInstall
            install -Dm755 dist/hashd $out/bin/hashd
            # `hashd deploy` runs nix and ssh; the host's own come first, these are the fallback.
            wrapProgram $out/bin/hashd --suffix PATH : ${lib.makeBinPath [ pkgs.nix pkgs.openssh ]}
            runHook postInstall
          '';
          # `bun build --compile` puts the program in an ELF section (.bun) of a copy of the bun
          # executable; strip removes it and leaves plain bun (patchelf keeps it).
          dontStrip = true;
          passthru = { inherit nodeModules; };
          meta = {
            description = "Run Nix service closures as socket-activated systemd units, reached by their store hash";
            mainProgram = "hashd";
            platforms = lib.platforms.linux;
          };
        };

      # The example chain on nixpkgs: the same nix/example, with bash/coreutils builders and
      # nixpkgs' python3 instead of the host's.
      exampleFor = pkgs: args: import ./nix/example ({
        hashd = hashdLib.withPkgs pkgs;
        python3 = "${pkgs.python3}/bin/python3";
      } // args);
    in
    {
      # Build service closures: hashd.lib.mkService { inherit pkgs; name = ...; exec = [ ... ]; }, or
      # (hashd.lib.withPkgs pkgs).mkService { ... }. See nix/lib.nix. `pkgs` is required here: the
      # closure is built with nixpkgs' bash and coreutils, since the build sandbox's /bin/sh on NixOS
      # has no mkdir, cp or chmod and a flake has no builtins.currentSystem. (nix/lib.nix without
      # nixpkgs, for hosts with /bin/sh and coreutils in /usr/bin, stays available outside the flake.)
      lib = {
        inherit (hashdLib) mkManifest hashOf mkHashUrl mkHashUrlIn withPkgs;
        mkService =
          args:
          if args ? pkgs then
            hashdLib.mkService args
          else
            throw (
              "hashd.lib.mkService (${args.name or "?"}): pass `pkgs`, the nixpkgs to build with "
              + "(e.g. `inherit pkgs;` with pkgs = nixpkgs.legacyPackages.x86_64-linux): the closure is "
              + "built with its bash and coreutils."
            );
      };

      # pkgs.hashd, for importing nixos-module/ by path: nixpkgs.overlays = [ hashd.overlays.default ];
      overlays.default = final: prev: { hashd = hashdFor final; };

      packages = forAllSystems (pkgs:
        let
          v1 = exampleFor pkgs { };
          v2 = exampleFor pkgs { version = "2"; };
        in
        rec {
          hashd = hashdFor pkgs;
          default = hashd;
          example-backend = v1.backend;
          example-frontend = v1.frontend;
          example-backend-v2 = v2.backend;
          example-frontend-v2 = v2.frontend;
        });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${systemOf pkgs}.default;
          meta.description = "the hashd CLI (deploy, status, alias, ...)";
        };
      });

      # The module with the package defaulting to this flake's build, made with the host's own pkgs
      # (its nixpkgs, overlays and system).
      nixosModules.default = { pkgs, ... }: {
        imports = [ ./nixos-module ];
        services.hashd.package = lib.mkDefault (hashdFor pkgs);
      };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.bun
            pkgs.nodejs
            pkgs.nix
            pkgs.nixfmt
            pkgs.nil
            pkgs.python3 # the example services
            pkgs.openssh
          ];
        };
      });

      checks = forAllSystems (pkgs:
        let
          system = systemOf pkgs;
          example = exampleFor pkgs { };
          # A NixOS system that only has to evaluate: its hashd.service unit file is the check.
          host = lib.nixosSystem {
            modules = [
              self.nixosModules.default
              {
                nixpkgs.hostPlatform = system;
                boot.isContainer = true;
                system.stateVersion = "25.05";
                services.hashd = {
                  enable = true;
                  clusterKeyFile = "/run/keys/hashd-cluster";
                  settings.gossip.seeds = [ "10.0.0.2:7946" ];
                  trustedPublicKeys = [ "deploy-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" ];
                  openFirewall = true;
                };
              }
            ];
          };
        in
        {
          hashd = self.packages.${system}.default;
          # The frontend's closure holds the backend: mkHashUrl made it a runtime reference.
          example-chain = pkgs.runCommand "hashd-example-chain-check"
            { exportReferencesGraph = [ "closure" example.frontend ]; }
            ''
              grep -qx '${example.backend}' closure || {
                echo "the frontend's closure does not contain the backend ${example.backend}" >&2
                exit 1
              }
              touch $out
            '';
          module-unit = host.config.systemd.units."hashd.service".unit;
          module-config = host.config.environment.etc."hashd/config.json".source;
          # Two hosts in one cluster and a deployer: deploy v1 with --alias prod, curl it through
          # each host's ingress, switch to v2, see v1 retire (nix/vm-test.nix). Needs VMs (KVM).
          vm = pkgs.testers.runNixOSTest (import ./nix/vm-test.nix {
            inherit pkgs;
            hashdModule = self.nixosModules.default;
            hashd = self.packages.${system}.default;
            example = {
              v1 = example;
              v2 = exampleFor pkgs { version = "2"; };
            };
            sshKeys = import "${nixpkgs}/nixos/tests/ssh-keys.nix" pkgs;
          });
        });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
