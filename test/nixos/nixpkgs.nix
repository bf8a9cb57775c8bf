# The stand-in for the `nixpkgs` flake input that the README's examples and flake.nix are evaluated
# with (test/readme-nix.test.ts): nixpkgs' real lib, with lib.nixosSystem as ./nixos.nix, and
# legacyPackages.<system> as ./pkgs.nix.
{ lib }:
{
  lib = lib // {
    nixosSystem = import ./nixos.nix { inherit lib; };
  };
  legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: import ./pkgs.nix { inherit lib system; });
  outPath = toString ./.;
}
