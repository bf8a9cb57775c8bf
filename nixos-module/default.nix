# services.hashd: the hashd agent on a NixOS host. It runs each service closure it is given as its own
# socket-activated systemd unit, reached at http://<hash>.<zone>/ (see the README).
#
# Shaped after nixpkgs' nixos/modules/services/networking/headscale.nix: typed options for what
# matters, a freeform `settings` (RFC 42) for the rest, written as JSON to /etc/hashd/config.json.
# The unit's settings (Type=notify, KillMode=process, the hardening) live in ../nix/agent-unit.nix,
# which the tests run on a real systemd.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkDefault mkEnableOption mkIf mkOption mkPackageOption optional optionalAttrs types;

  cfg = config.services.hashd;
  settingsFormat = pkgs.formats.json { };

  configPath = "/etc/hashd/config.json";
  configFile = settingsFormat.generate "hashd-config.json" cfg.settings;
  # systemd puts LoadCredential= files here (systemd.exec(5), "Credentials"); the agent reads the key
  # at run time, so it is never in the Nix store.
  keyCredentialPath = "/run/credentials/hashd.service/cluster-key";

  listenOptions = what: defaultAddress: defaultPort: {
    address = mkOption {
      type = types.str;
      default = defaultAddress;
      description = "Address the ${what} listens on.";
    };
    port = mkOption {
      type = types.port;
      default = defaultPort;
      description = "TCP port of the ${what}.";
    };
  };

  isLoopback = address: lib.hasPrefix "127." address || address == "::1" || address == "localhost";
  # The effective ports: the options above, unless `settings` overrides them.
  ports = [ cfg.settings.ingress.port cfg.settings.status.port cfg.settings.gossip.port ];
in
{
  options.services.hashd = {
    enable = mkEnableOption "hashd, the agent that runs Nix service closures as socket-activated systemd units";

    package = mkPackageOption pkgs "hashd" { };

    zone = mkOption {
      type = types.strMatching "[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*";
      default = "localhost";
      example = "svc.example.org";
      description = ''
        DNS zone of hash URLs: a service is reached at `http://<hash>.<zone>/`. Point a wildcard
        record `*.<zone>` at the hosts. The default, `localhost`, needs no DNS: names under
        .localhost resolve to the loopback address (RFC 6761), where each host's agent listens.
      '';
    };

    ingress = listenOptions "ingress (the HTTP proxy for every hash URL)" "0.0.0.0" 80;

    statusPage = listenOptions "status page (read-only, no authentication)" "127.0.0.1" 8481;

    gossip = {
      port = mkOption {
        type = types.port;
        default = 7946;
        description = "UDP and TCP port of the gossip between agents.";
      };
      seeds = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "10.0.0.2:7946" "10.0.0.3:7946" ];
        description = ''
          `host:port` of agents to join at start (any one reachable member is enough). They are
          also tried again later, every 30 s or so, when they are not alive members: list hosts on
          every side a partition could cut (every host is fine), so that the cluster finds itself
          again even if every agent on one side restarted during the partition.
        '';
      };
    };

    clusterKeyFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/keys/hashd-cluster-key";
      description = ''
        File holding the key that seals gossip between agents, the same on every host. Read at run
        time through systemd's LoadCredential=, so it may be readable by root only; it is never
        copied into the Nix store. Give a path as a string, not a Nix path literal.
      '';
    };

    trustedPublicKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "deploy-1:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu=" ];
      description = ''
        Public keys whose signatures this host accepts on service closures copied in by `hashd
        deploy` (`nix store sign`). Added to nix.settings.extra-trusted-public-keys, so the
        default cache key stays.
      '';
    };

    substituters = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "https://cache.example.org" "ssh-ng://builder.example.org" ];
      description = "Where the agent copies a missing closure from (`nix copy --from`), in order.";
    };

    stateDirectory = mkOption {
      type = types.strMatching "/var/lib/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*";
      default = "/var/lib/hashd";
      description = "The agent's database and state; a directory under /var/lib (systemd's StateDirectory=).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the ingress port (TCP) and the gossip port (UDP and TCP). Never the status page.";
    };

    settings = mkOption {
      type = types.submodule { freeformType = settingsFormat.type; };
      default = { };
      example = { readyTimeoutSec = 300; };
      description = ''
        The agent's configuration, written to ${configPath} and passed with `--config`. The
        options above fill in its keys (stateDir, runtimeDir, gcRootDir, zone, ingress, status,
        gossip, substituters); anything set here wins. See src/agent/config.ts for every key.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.gossip.seeds == [ ] || cfg.clusterKeyFile != null;
        message = ''
          services.hashd.gossip.seeds is set but services.hashd.clusterKeyFile is not. Gossip
          between hosts is sealed with a shared key: put the same key file on every host (outside
          the Nix store, e.g. /run/keys/hashd-cluster-key) and set clusterKeyFile to its path.
        '';
      }
      {
        assertion = cfg.clusterKeyFile == null || !(lib.hasPrefix builtins.storeDir cfg.clusterKeyFile);
        message = ''
          services.hashd.clusterKeyFile points into the Nix store (${toString cfg.clusterKeyFile}),
          where every user can read it. Keep the key in a root-only file outside the store and
          give its path as a string.
        '';
      }
      {
        assertion = lib.length (lib.unique ports) == lib.length ports;
        message = ''
          services.hashd: the ingress (${toString cfg.settings.ingress.port}), status page
          (${toString cfg.settings.status.port}) and gossip (${toString cfg.settings.gossip.port}) ports
          must differ.
        '';
      }
      {
        assertion = cfg.settings.runtimeDir == "/run/hashd";
        message = ''
          services.hashd.settings.runtimeDir must stay /run/hashd: the unit's RuntimeDirectory=hashd
          (kept across agent restarts) is where the services' sockets live.
        '';
      }
      {
        assertion = cfg.settings.stateDir == cfg.stateDirectory;
        message = "Set services.hashd.stateDirectory instead of services.hashd.settings.stateDir.";
      }
    ];

    warnings =
      optional (!isLoopback cfg.settings.status.address) ''
        services.hashd.statusPage.address is ${cfg.settings.status.address}: the status page has no
        authentication and shows every service and host. Keep it on 127.0.0.1 and use an SSH tunnel.
      ''
      ++ optional (cfg.openFirewall && isLoopback cfg.settings.ingress.address) ''
        services.hashd.openFirewall opens port ${toString cfg.settings.ingress.port}, but the ingress
        listens on ${cfg.settings.ingress.address} only.
      '';

    services.hashd.settings = {
      stateDir = mkDefault cfg.stateDirectory;
      runtimeDir = mkDefault "/run/hashd";
      gcRootDir = mkDefault "/nix/var/nix/gcroots/hashd";
      zone = mkDefault cfg.zone;
      substituters = mkDefault cfg.substituters;
      ingress = {
        address = mkDefault cfg.ingress.address;
        port = mkDefault cfg.ingress.port;
      };
      status = {
        address = mkDefault cfg.statusPage.address;
        port = mkDefault cfg.statusPage.port;
      };
      gossip = {
        port = mkDefault cfg.gossip.port;
        seeds = mkDefault cfg.gossip.seeds;
      } // optionalAttrs (cfg.clusterKeyFile != null) {
        keyFile = mkDefault keyCredentialPath;
      };
    };

    environment.etc."hashd/config.json".source = configFile;
    # The CLI on the host (`hashd status`, `hashd activate`) talks to the local agent.
    environment.systemPackages = [ cfg.package ];

    nix.settings.extra-trusted-public-keys = mkIf (cfg.trustedPublicKeys != [ ]) cfg.trustedPublicKeys;

    # The agent writes its GC roots (symlinks) here; it must exist before ReadWritePaths= binds it.
    systemd.tmpfiles.rules = [ "d ${cfg.settings.gcRootDir} 0755 root root - -" ];

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts = [ cfg.settings.ingress.port cfg.settings.gossip.port ];
      allowedUDPPorts = [ cfg.settings.gossip.port ];
    };

    systemd.services.hashd = {
      description = "hashd agent: Nix service closures as socket-activated systemd units";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" "nix-daemon.socket" ];
      # nix for copies and path-info; systemctl, systemd-run, systemd-notify and journalctl.
      path = [ config.nix.package config.systemd.package ];
      # The config file is not in ExecStart, so name it here: a changed config restarts the agent,
      # which (KillMode=process, transient units) leaves every service running.
      restartTriggers = [ configFile ];
      # Restart in place on `nixos-rebuild switch` rather than stop, then start after the switch.
      stopIfChanged = false;
      serviceConfig = import ../nix/agent-unit.nix {
        stateDirectory = lib.removePrefix "/var/lib/" cfg.stateDirectory;
        gcRootDir = cfg.settings.gcRootDir;
        lowPorts = lib.any (port: port < 1024) ports;
        credentials = optional (cfg.clusterKeyFile != null) "cluster-key:${cfg.clusterKeyFile}";
      } // {
        ExecStart = "${lib.getExe cfg.package} serve --config ${configPath}";
      };
    };
  };
}
