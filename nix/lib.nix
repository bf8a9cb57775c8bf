# hashd's Nix library: build service closures and the hash URLs that link them.
#
#   hashd = import ./nix/lib.nix { };          # no nixpkgs: the host's /bin/sh and /usr/bin:/bin
#   hashd = import ./nix/lib.nix { inherit pkgs; };   # nixpkgs: bash + coreutils (NixOS sandbox)
#
# On NixOS (and in flakes) always give pkgs: the build sandbox's /bin/sh there is busybox's sandbox
# shell, which has no mkdir, cp or chmod. flake.nix's lib.mkService requires it.
#
#   backend  = hashd.mkService { name = "api"; exec = [ "${api}/bin/api" ]; };
#   frontend = hashd.mkService {
#     name = "web";
#     exec = [ "${web}/bin/web" ];
#     environment.BACKEND_URL = hashd.mkHashUrl backend;   # the backend becomes a reference of web
#   };
#
# mkService also takes `version` (only in the store path's name), `system`, and `files`: texts
# written into the closure, e.g. files."app/main.py" = builtins.readFile ./main.py; with
# exec = [ python "${placeholder "out"}/app/main.py" ] (placeholder "out" is the closure itself).
#
# flake.nix exposes both variants (lib and lib.withPkgs); nix/example/ is a complete chain.
{ pkgs ? null }:
let
  hashUrl = import ./hash-url.nix;
  manifest = import ./manifest.nix;

  toolchain =
    if pkgs == null then {
      # A builder starts with an empty PATH; Debian keeps coreutils in /bin and /usr/bin.
      builder = "/bin/sh";
      toolPath = "/usr/bin:/bin";
      defaultSystem = builtins.currentSystem or
        (throw ("hashd.mkService: pass `pkgs` (nixpkgs, whose bash and coreutils then build the closure), or, on a "
          + "host whose /bin/sh has mkdir, cp and chmod in /usr/bin or /bin, `system` (builtins.currentSystem is not "
          + "available in pure evaluation, e.g. in a flake). On NixOS pass `pkgs`: its build sandbox's /bin/sh has no mkdir."));
    } else {
      builder = "${pkgs.bash}/bin/sh";
      toolPath = "${pkgs.coreutils}/bin";
      defaultSystem = pkgs.stdenv.hostPlatform.system;
    };
  mkService = import ./service.nix toolchain;
in
{
  # mkService { name, exec, socket?, readiness?, idleStopSec?, drainTimeoutSec?, startTimeoutSec?,
  #             environment?, files?, version?, system? } -> a service closure (nix/service.nix).
  # Given `pkgs`, that one call builds with nixpkgs' bash and coreutils instead.
  mkService = args:
    if args ? pkgs then (import ./lib.nix { inherit (args) pkgs; }).mkService (removeAttrs args [ "pkgs" ])
    else mkService args;
  inherit (manifest) mkManifest;
  inherit (hashUrl) hashOf mkHashUrl mkHashUrlIn;
  manifestToJSON = manifest.toJSON;
  # The same lib built on nixpkgs, e.g. (import ./nix/lib.nix { }).withPkgs pkgs
  withPkgs = pkgs: import ./lib.nix { inherit pkgs; };
}
