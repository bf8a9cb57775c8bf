{
  description = "hashd: each version of each service is a Nix closure, run as its own socket-activated systemd unit and reached at http://<hash>.<zone>/";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  # What could not be checked where this was written (no nixpkgs, no network to a binary cache):
  # this file was only parsed (`nix-instantiate --parse`, in test/nix-lib.test.ts). The pieces it is
  # built from were tested with Debian's nix 2.8: nix/lib.nix, nix/example (built, references
  # checked, served under systemd socket activation) and nix/agent-unit.nix (run under systemd 252).
  # The node_modules hash is real: test/flake-node-modules.test.ts recomputes it from bun.lock and
  # has Nix 2.8 build a fixed-output derivation that runs the same nix/node-modules.sh with that
  # hash (with the machine's bun 1.4.5, not nixpkgs' bun: see nix/node-modules.sh for why the
  # tree does not depend on bun's version). The package's build command was run by hand outside
  # Nix (bun build --compile). Not verified: evaluation against nixpkgs, the build inside nixpkgs'
  # stdenv, and the module under nixpkgs' real module system (checks.module-unit; the tests use a
  # stand-in).
  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      hashdLib = import ./nix/lib.nix { };
      version = (lib.importJSON ./package.json).version;

      # Only what the build reads, so that editing docs or tests does not change the hashes.
      src = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [ ./package.json ./bun.lock ./bunfig.toml ./tsconfig.json ./src ];
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
      # Build service closures: hashd.lib.mkService { pkgs = ...; name = ...; exec = [ ... ]; }
      # (with `pkgs` the builder is nixpkgs' bash; without it, the host's /bin/sh and `system`
      # must be given), or (hashd.lib.withPkgs pkgs).mkService { ... }. See nix/lib.nix.
      lib = {
        inherit (hashdLib) mkService mkManifest hashOf mkHashUrl mkHashUrlIn withPkgs;
      };

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
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          meta.description = "the hashd CLI (deploy, status, alias, ...)";
        };
      });

      # The module with the package defaulting to this flake's build.
      nixosModules.default = { pkgs, ... }: {
        imports = [ ./nixos-module ];
        services.hashd.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.bun
            pkgs.nodejs
            pkgs.nix
            pkgs.nixfmt-rfc-style
            pkgs.nil
            pkgs.python3 # the example services
            pkgs.openssh
          ];
        };
      });

      checks = forAllSystems (pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
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
                  gossip.seeds = [ "10.0.0.2:7946" ];
                  clusterKeyFile = "/run/keys/hashd-cluster-key";
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
        });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
