# Stand-ins for the NixOS options that nixos-module/default.nix and the VM test's nodes
# (nix/vm-test.nix) touch, declared with the types nixpkgs declares them with, so that nixpkgs' own
# lib.evalModules type-checks, merges and prioritises their definitions as a NixOS evaluation would.
# Each block names the nixpkgs file it follows. Where NixOS computes something a test looks at, it
# is computed here the way that file does: a service's unit text (nixos/lib/systemd-lib.nix,
# serviceToUnit), the PATH from `path`, /etc entries from `text`, the firewall's port lists, and the
# failed assertions and warnings of system.build.toplevel. Everything else NixOS does is not here.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    any
    attrNames
    concatLists
    concatMap
    concatMapStrings
    concatStrings
    concatStringsSep
    filter
    filterOverrides
    isList
    literalExpression
    makeBinPath
    makeSearchPathOutput
    mapAttrs'
    mapAttrsToList
    mergeEqualOption
    mkDefault
    mkIf
    mkOption
    mkOptionType
    nameValuePair
    optionalAttrs
    optionalString
    toList
    types
    ;

  # nixos/lib/systemd-lib.nix
  unitNameType = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";
  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;
  attrsToSection =
    as:
    concatStrings (
      concatLists (
        mapAttrsToList (name: value: map (x: "${name}=${toOption x}\n") (if isList value then value else [ value ])) as
      )
    );
  checkUnitConfig =
    group: checks: attrs:
    let
      defs = builtins.mapAttrs (
        _: v: if v._type or "" == "override" || v._type or "" == "if" then v.content else v
      ) attrs;
      errors = concatMap (c: c group defs) checks;
    in
    if errors == [ ] then true else builtins.trace (concatStringsSep "\n" errors) false;
  assertValueOneOf =
    name: values: group: attr:
    lib.optional (
      attr ? ${name} && !lib.elem attr.${name} values
    ) "Systemd ${group} field `${name}' cannot have value `${toString attr.${name}}'.";

  # nixos/lib/systemd-unit-options.nix
  unitOption = mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = filterOverrides defs;
      in
      if any (def: isList def.value) defs' then concatMap (def: toList def.value) defs' else mergeEqualOption loc defs';
  };
  checkService = checkUnitConfig "Service" [
    (assertValueOneOf "Type" [
      "exec"
      "simple"
      "forking"
      "oneshot"
      "dbus"
      "notify"
      "notify-reload"
      "idle"
    ])
    (assertValueOneOf "Restart" [
      "no"
      "on-success"
      "on-failure"
      "on-abnormal"
      "on-abort"
      "always"
    ])
  ];
  unitList = mkOption {
    default = [ ];
    type = types.listOf unitNameType;
  };
  serviceModule =
    { config, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        description = mkOption {
          type = types.singleLineStr;
          default = "";
        };
        documentation = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        requires = unitList;
        wants = unitList;
        after = unitList;
        before = unitList;
        bindsTo = unitList;
        partOf = unitList;
        conflicts = unitList;
        requisite = unitList;
        onFailure = unitList;
        wantedBy = unitList;
        requiredBy = unitList;
        unitConfig = mkOption {
          type = types.attrsOf unitOption;
          default = { };
        };
        restartTriggers = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        environment = mkOption {
          type = environmentType;
          default = { };
        };
        path = mkOption {
          type = types.listOf (
            types.oneOf [
              types.package
              types.str
            ]
          );
          default = [ ];
        };
        serviceConfig = mkOption {
          type = types.addCheck (types.attrsOf unitOption) checkService;
          default = { };
        };
        restartIfChanged = mkOption {
          type = types.bool;
          default = true;
        };
        reloadIfChanged = mkOption {
          type = types.bool;
          default = false;
        };
        stopIfChanged = mkOption {
          type = types.bool;
          default = true;
        };
      };
      config = {
        # systemd-lib.nix, unitConfig
        unitConfig =
          optionalAttrs (config.requires != [ ]) { Requires = toString config.requires; }
          // optionalAttrs (config.wants != [ ]) { Wants = toString config.wants; }
          // optionalAttrs (config.after != [ ]) { After = toString config.after; }
          // optionalAttrs (config.before != [ ]) { Before = toString config.before; }
          // optionalAttrs (config.bindsTo != [ ]) { BindsTo = toString config.bindsTo; }
          // optionalAttrs (config.partOf != [ ]) { PartOf = toString config.partOf; }
          // optionalAttrs (config.conflicts != [ ]) { Conflicts = toString config.conflicts; }
          // optionalAttrs (config.requisite != [ ]) { Requisite = toString config.requisite; }
          // optionalAttrs (config.restartTriggers != [ ]) {
            X-Restart-Triggers = "${pkgs.writeText "X-Restart-Triggers-unit" (toString (lib.flatten config.restartTriggers))}";
          }
          // optionalAttrs (config.description != "") { Description = config.description; }
          // optionalAttrs (config.documentation != [ ]) { Documentation = toString config.documentation; }
          // optionalAttrs (config.onFailure != [ ]) { OnFailure = toString config.onFailure; };
        # systemd-lib.nix, serviceConfig, and stage2ServiceConfig's default path
        environment.PATH = mkIf (config.path != [ ]) "${makeBinPath config.path}:${makeSearchPathOutput "bin" "sbin" config.path}";
        path = lib.mkAfter [
          pkgs.coreutils
          pkgs.findutils
          pkgs.gnugrep
          pkgs.gnused
          pkgs.systemd
        ];
      };
    };

  # systemd-lib.nix, commonUnitText and serviceToUnit
  serviceText =
    def:
    ''
      [Unit]
      ${attrsToSection def.unitConfig}
    ''
    + ''
      [Service]
    ''
    + (
      let
        env = config.systemd.globalEnvironment // def.environment;
      in
      concatMapStrings (
        n: optionalString (env.${n} != null) "Environment=${builtins.toJSON "${n}=${env.${n}}"}\n"
      ) (attrNames env)
    )
    + (
      if def.reloadIfChanged then
        "X-ReloadIfChanged=true\n"
      else if !def.restartIfChanged then
        "X-RestartIfChanged=false\n"
      else
        ""
    )
    + optionalString (!def.stopIfChanged) "X-StopIfChanged=false\n"
    + attrsToSection def.serviceConfig
    + optionalString (def.wantedBy != [ ]) ''

      [Install]
      WantedBy=${concatStringsSep " " def.wantedBy}
    '';

  # nixos/modules/services/networking/firewall.nix
  portList = mkOption {
    type = types.listOf types.port;
    default = [ ];
    apply = ports: lib.unique (builtins.sort builtins.lessThan ports);
  };

  # nixos/modules/misc/nixpkgs.nix
  overlayType = mkOptionType {
    name = "nixpkgs-overlay";
    check = lib.isFunction;
    merge = lib.mergeOneOption;
  };

  # nixos/modules/config/nix.nix
  confAtom =
    types.nullOr (
      types.oneOf [
        types.bool
        types.int
        types.float
        types.str
        types.path
        types.package
      ]
    )
    // {
      description = "Nix config atom (null, bool, int, float, str, path or package)";
    };

  # a unit's environment and systemd.globalEnvironment (nixos/modules/system/boot/systemd.nix)
  environmentType = types.attrsOf (
    types.nullOr (
      types.oneOf [
        types.str
        types.path
        types.package
      ]
    )
  );

  failedAssertions = map (x: x.message) (filter (x: !x.assertion) config.assertions);
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      default = [ ];
    };

    # nixos/modules/misc/nixpkgs.nix (the stand-in pkgs apply the overlays: test/nixos/pkgs.nix)
    nixpkgs.overlays = mkOption {
      type = types.listOf overlayType;
      default = [ ];
    };
    nixpkgs.hostPlatform = mkOption {
      type = types.either types.str types.attrs;
      default = "x86_64-linux";
    };

    # nixos/modules/system/boot/systemd.nix and systemd-unit-options.nix
    systemd.package = mkOption {
      type = types.package;
      default = pkgs.systemd;
      defaultText = literalExpression "pkgs.systemd";
    };
    systemd.globalEnvironment = mkOption {
      type = environmentType;
      default = { };
    };
    systemd.services = mkOption {
      type = types.attrsOf (types.submodule serviceModule);
      default = { };
    };
    # internal in NixOS: the generated unit files
    systemd.units = mkOption {
      type = types.attrsOf types.attrs;
      internal = true;
      readOnly = true;
    };

    # nixos/modules/system/boot/systemd/tmpfiles.nix
    systemd.tmpfiles.rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    # nixos/modules/system/etc/etc.nix
    environment.etc = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule (
          {
            name,
            config,
            options,
            ...
          }:
          {
            options = {
              enable = mkOption {
                type = types.bool;
                default = true;
              };
              target = mkOption { type = types.str; };
              text = mkOption {
                type = types.nullOr types.lines;
                default = null;
              };
              source = mkOption { type = types.path; };
              mode = mkOption {
                type = types.str;
                default = "symlink";
              };
            };
            config = {
              target = mkDefault name;
              source = mkIf (config.text != null) (
                lib.mkDerivedConfig options.text (pkgs.writeText ("etc-" + lib.replaceStrings [ "/" ] [ "-" ] name))
              );
            };
          }
        )
      );
    };
    # nixos/modules/config/system-path.nix
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };

    networking.firewall.allowedTCPPorts = portList;
    networking.firewall.allowedUDPPorts = portList;

    nix.package = mkOption {
      type = types.package;
      default = pkgs.nix;
      defaultText = literalExpression "pkgs.nix";
    };
    nix.settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf (types.either confAtom (types.listOf confAtom));
        options = {
          trusted-public-keys = mkOption { type = types.listOf types.str; };
          substituters = mkOption { type = types.listOf types.str; };
        };
      };
      default = { };
    };

    # nixos/modules/misc/version.nix, nixos/modules/virtualisation/container-config.nix
    system.stateVersion = mkOption {
      type = types.str;
      default = "26.05";
    };
    boot.isContainer = mkOption {
      type = types.bool;
      default = false;
    };
    # nixos/modules/config/sysctl.nix
    boot.kernel.sysctl = mkOption {
      type = types.attrsOf (types.nullOr (types.either types.str types.int));
      default = { };
    };

    # nixos/modules/security/acme/default.nix: the parts services read (`useACMEHost`)
    security.acme.certs = mkOption {
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              directory = mkOption {
                type = types.str;
                readOnly = true;
                default = "/var/lib/acme/${name}";
              };
              group = mkOption {
                type = types.str;
                default = "acme";
              };
              domain = mkOption {
                type = types.str;
                default = name;
              };
              extraDomainNames = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              dnsProvider = mkOption {
                type = types.nullOr types.str;
                default = null;
              };
              reloadServices = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
            };
          }
        )
      );
      default = { };
    };

    # nixos/modules/system/activation/top-level.nix: what `nixos-rebuild` builds; failed assertions
    # and warnings are reported when it is evaluated.
    system.build.toplevel = mkOption {
      type = types.unspecified;
      readOnly = true;
    };
  };

  config = {
    systemd.globalEnvironment.TZDIR = "/etc/zoneinfo";
    systemd.units = mapAttrs' (
      name: def:
      let
        text = serviceText def;
      in
      nameValuePair "${name}.service" {
        inherit text;
        unit = pkgs.writeText "unit-${name}.service" text;
      }
    ) (lib.filterAttrs (_: def: def.enable) config.systemd.services);

    # nix.nix: the defaults, and nix.conf written from nix.settings (extra-* keys last)
    nix.settings = {
      trusted-public-keys = [ "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=" ];
      substituters = lib.mkAfter [ "https://cache.nixos.org/" ];
    };
    environment.etc."nix/nix.conf".text =
      let
        value =
          v:
          if v == null then
            ""
          else if lib.isBool v then
            lib.boolToString v
          else
            toString v;
        pairs = attrs: concatStringsSep "\n" (mapAttrsToList (k: v: "${k} = ${value v}") attrs);
        isExtra = key: lib.hasPrefix "extra-" key;
      in
      ''
        ${pairs (lib.filterAttrs (k: _: !isExtra k) config.nix.settings)}
        ${pairs (lib.filterAttrs (k: _: isExtra k) config.nix.settings)}
      '';

    # What it is built from here: /etc's files and the unit files (their store paths, so every
    # value they are written from is evaluated and type-checked) and the system's packages.
    system.build.toplevel =
      let
        built = builtins.deepSeq [
          (lib.mapAttrsToList (_: entry: toString entry.source) (lib.filterAttrs (_: e: e.enable) config.environment.etc))
          (lib.mapAttrsToList (_: unit: toString unit.unit) config.systemd.units)
          (map toString config.environment.systemPackages)
        ] "toplevel";
      in
      if failedAssertions != [ ] then
        throw "\nFailed assertions:\n${concatStringsSep "\n" (map (x: "- ${x}") failedAssertions)}"
      else
        lib.foldr (w: x: lib.warn w x) built config.warnings;
  };
}
