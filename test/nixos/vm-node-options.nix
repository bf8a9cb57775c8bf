# Stand-ins for the NixOS options that the VM test's nodes (nix/vm-test.nix) set besides those in
# ./nixos-options.nix, with nixpkgs' types: services.openssh (nixos/modules/services/networking/ssh/
# sshd.nix), users.users.<name>.openssh (the same file), programs.ssh (programs/ssh.nix),
# networking.hostName (tasks/network-interfaces.nix), networking.primaryIPAddress (lib/testing/
# network.nix), system.extraDependencies (system/
# activation/top-level.nix) and virtualisation.memorySize (virtualisation/qemu-vm.nix).
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    services.openssh.enable = mkOption {
      type = types.bool;
      default = false;
    };
    services.openssh.settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf (
          types.nullOr (
            types.oneOf [
              types.bool
              types.int
              types.str
              (types.listOf types.str)
            ]
          )
        );
      };
      default = { };
    };
    users.users = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options.openssh.authorizedKeys.keys = mkOption {
            type = types.listOf types.singleLineStr;
            default = [ ];
          };
        }
      );
    };
    programs.ssh.extraConfig = mkOption {
      type = types.lines;
      default = "";
    };
    networking.hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
    };
    # nixos/lib/testing/network.nix sets it for each node
    networking.primaryIPAddress = mkOption {
      type = types.str;
      default = "";
    };
    system.extraDependencies = mkOption {
      type = types.listOf types.pathInStore;
      default = [ ];
    };
    virtualisation.memorySize = mkOption {
      type = types.ints.positive;
      default = 1024;
    };
  };
}
