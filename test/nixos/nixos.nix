# nixpkgs' lib.nixosSystem, as far as it goes here: lib.evalModules over the stand-in NixOS options
# (./nixos-options.nix) and the given modules, with the stand-in package set (./pkgs.nix) as `pkgs`,
# built for `system` with the configuration's nixpkgs.overlays.
{ lib }:
{
  modules,
  system ? "x86_64-linux",
  specialArgs ? { },
  ...
}:
lib.evalModules {
  inherit specialArgs;
  class = "nixos";
  modules = [
    ./nixos-options.nix
    (
      { config, ... }:
      {
        _module.args.pkgs = import ./pkgs.nix {
          inherit lib system;
          inherit (config.nixpkgs) overlays;
        };
      }
    )
  ]
  ++ modules;
}
