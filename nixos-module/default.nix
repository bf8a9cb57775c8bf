# services.hashd: the hashd agent on a NixOS host. It runs each service closure it is given as its own
# socket-activated systemd unit, reached at http://<hash>.<zone>/ (see the README).
#
# Shaped after nixpkgs' nixos/modules/services/networking/headscale.nix, with RFC 42 all the way:
# every key the agent reads (src/model/config.ts) is a typed option inside `settings`, so it has one
# name and one type, and a wrong value fails evaluation with the option's name; other keys pass
# through a freeform JSON type (with a warning: the agent refuses keys it does not know).
# `settings` is written, without its nulls, to /etc/hashd/config.json. The options outside
# `settings` are the host's side: the package, the cluster key (a LoadCredential=), the keys that
# may sign closures (nix.conf), the firewall. test/nixos-module.test.ts walks the agent's schema and
# these options and fails when they disagree.
#
# The unit's settings (Type=notify, KillMode=process, the hardening) live in ../nix/agent-unit.nix;
# those the agent does not depend on are mkDefault, so a plain definition changes them.
#
# The package: hashd is not in nixpkgs. Use the flake's nixosModules.default (it sets the package),
# or import this file with the flake's overlays.default in nixpkgs.overlays, or set package.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    optional
    types
    ;

  cfg = config.services.hashd;
  settingsFormat = pkgs.formats.json { };

  configPath = "/etc/hashd/config.json";
  # systemd puts LoadCredential= files here (systemd.exec(5), "Credentials"); the agent reads the key
  # at run time, so it is never in the Nix store.
  keyCredentialPath = "/run/credentials/hashd.service/cluster-key";

  # The agent's schema has optional keys, not null ones: a null option is a key left out.
  agentConfig = lib.filterAttrsRecursive (_: value: value != null) cfg.settings;
  configFile = settingsFormat.generate "hashd-config.json" agentConfig;

  # A string type with a pattern and a description that says what is wanted (the description is
  # what an evaluation error shows).
  strWith =
    pattern: description:
    types.strMatching pattern
    // {
      inherit description;
    };
  # Spliced into unit files and tmpfiles rules: no spaces, no % (a systemd specifier), no . or ..
  # segments.
  segments = "(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+";
  plainPath = strWith segments "absolute path as a string (letters, digits and . _ @ + -, no segment starting with a dot)";
  nonEmptyStr = strWith ".+" "non-empty string";
  # An alias name (src/model/names.ts isAliasName): a DNS label that is not 32 nix-base32 characters.
  aliasName = types.addCheck (strWith "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?" "alias name (a DNS label: 1-63 of a-z, 0-9 and -, not a store hash)") (
    name: builtins.match "[0-9a-df-np-sv-z]{32}" name == null
  );
  # The zone of src/model/names.ts (ZONE_SOURCE, ZONE_MAX_LENGTH), as in nix/hash-url.nix: lower-case
  # DNS labels of 1-63 characters separated by dots, at most 220 characters in all (so that
  # `<hash>.<zone>` is a DNS name of at most 253). test/name-patterns.test.ts compares them.
  zonePattern = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*";
  zoneMaxLength = 220;
  # Service and credential names as src/model/names.ts has them (SERVICE_NAME_SOURCE,
  # CREDENTIAL_NAME_SOURCE, CREDENTIALS_MAX; test/name-patterns.test.ts compares them).
  serviceNamePattern = "[A-Za-z0-9][A-Za-z0-9._+-]{0,63}";
  credentialNamePattern = "[a-z0-9][a-z0-9_.-]{0,63}";
  credentialsMax = 32;
  credentialServicesMax = 1024;
  # services.hashd.credentials, flattened: one entry per file, for the assertions
  credentialEntries = lib.concatLists (
    lib.mapAttrsToList (
      service: names: lib.mapAttrsToList (name: path: { inherit service name path; }) names
    ) cfg.credentials
  );
  badServiceNames = lib.filter (n: builtins.match serviceNamePattern n == null) (lib.attrNames cfg.credentials);
  badCredentialNames = lib.filter (e: builtins.match credentialNamePattern e.name == null) credentialEntries;
  crowdedServices = lib.filter (n: lib.length (lib.attrNames cfg.credentials.${n}) > credentialsMax) (
    lib.attrNames cfg.credentials
  );
  storeCredentials = lib.filter (e: lib.hasPrefix "${builtins.storeDir}/" e.path) credentialEntries;
  tmpCredentials = lib.filter (e: builtins.match "/(var/)?tmp/.*" e.path != null) credentialEntries;
  entryName = e: "services.hashd.credentials.${builtins.toJSON e.service}.${builtins.toJSON e.name}";

  # An alias keeps its target and up to 9 previous ones (src/agent/gossip/wire/codec-fields.ts,
  # LIMITS.previousPerAlias); the test compares this bound with the agent's schema.
  maxKeepLast = 10;

  listenOptions = what: defaultAddress: defaultPort: {
    address = mkOption {
      type = nonEmptyStr;
      default = defaultAddress;
      description = "Address the ${what} listens on (an IP address; `0.0.0.0` for every IPv4 address).";
    };
    port = mkOption {
      type = types.port;
      default = defaultPort;
      description = "TCP port of the ${what}.";
    };
  };

  # Every key of src/model/config.ts, typed. test/nixos-module.test.ts checks the two agree.
  settingsOptions = {
    stateDir = mkOption {
      type = strWith "/var/lib${segments}" "directory under /var/lib (systemd's StateDirectory=)";
      default = "/var/lib/hashd";
      description = "The agent's SQLite state. Under /var/lib: the unit's StateDirectory= creates it, owned by root, 0700.";
    };
    runtimeDir = mkOption {
      type = plainPath;
      default = "/run/hashd";
      description = "`control.sock`, the services' sockets and links the units run. Stays /run/hashd: the unit's RuntimeDirectory=hashd (kept across agent restarts) is that directory.";
    };
    gcRootDir = mkOption {
      type = plainPath;
      default = "/nix/var/nix/gcroots/hashd";
      description = "One GC root (a symlink) per live hash. The module creates it (systemd.tmpfiles) and makes it writable for the agent (ReadWritePaths=).";
    };
    zone = mkOption {
      type = types.addCheck (strWith zonePattern "DNS name (lower-case letters, digits, - and dots, e.g. svc.example.org)") (
        zone: builtins.stringLength zone <= zoneMaxLength
      );
      default = "localhost";
      example = "svc.example.org";
      description = ''
        DNS zone of hash URLs: a service is reached at `http://<hash>.<zone>/`. Point a wildcard
        record `*.<zone>` at the hosts. The default, `localhost`, needs no DNS: names under
        .localhost resolve to the loopback address (RFC 6761), where each host's agent listens.
      '';
    };
    substituters = mkOption {
      type = types.listOf nonEmptyStr;
      default = [ ];
      example = [
        "https://cache.example.org"
        "ssh-ng://builder.example.org"
      ];
      description = "Where `hashd activate` copies a missing closure from (`nix copy --from`), in order.";
    };
    ingress = mkOption {
      type = types.submodule { options = listenOptions "ingress (the HTTP proxy of every hash and alias URL)" "0.0.0.0" 80; };
      default = { };
      description = "Where hash and alias URLs are served. Port 80 lets `http://<hash>.<zone>/` work without a port; the unit then keeps CAP_NET_BIND_SERVICE and nothing else.";
    };
    status = mkOption {
      type = types.submodule { options = listenOptions "status page (read-only, no authentication)" "127.0.0.1" 8481; };
      default = { };
      description = "The status page. It has no authentication: keep it on loopback and use an SSH tunnel.";
    };
    tls = mkOption {
      type = types.nullOr (
        types.submodule {
          options = {
            certificateFile = mkOption {
              type = types.nullOr plainPath;
              default = null;
              example = "/var/lib/acme/example.org/fullchain.pem";
              description = "PEM file: the wildcard certificate for `*.<zone>` and `<zone>`, then its chain. Set from {option}`services.hashd.tls.useACMEHost` when that is set.";
            };
            keyFile = mkOption {
              type = types.nullOr plainPath;
              default = null;
              example = "/var/lib/acme/example.org/key.pem";
              description = "PEM file: the certificate's private key, readable by the agent (outside the Nix store). Set from {option}`services.hashd.tls.useACMEHost` when that is set.";
            };
            address = mkOption {
              type = types.nullOr nonEmptyStr;
              default = null;
              description = "Address of the HTTPS listener; null: the ingress address.";
            };
            port = mkOption {
              type = types.port;
              default = 443;
              description = "Port of the HTTPS listener.";
            };
            redirectHttp = mkOption {
              type = types.bool;
              default = false;
              description = "Answer plain-HTTP requests with a 308 to the same URL over HTTPS, except those from this host (services calling through HASHD_INGRESS) and those a member forwards.";
            };
            checkSec = mkOption {
              type = types.addCheck types.numbers.positive (s: s <= 86400) // {
                description = "positive number of seconds, at most 86400";
              };
              default = 10;
              description = "How often the agent checks the two files for a change; a changed, valid pair is served to new handshakes without a restart (open connections keep the old one).";
            };
          };
        }
      );
      default = null;
      description = ''
        HTTPS on every hash and alias URL (`https://<hash>.<zone>/`): one wildcard certificate for
        `*.<zone>` and `<zone>` (a wildcard needs the ACME DNS-01 challenge). TLS 1.2 and 1.3,
        HTTP/1.1. A missing or broken pair at start stops the agent; at a renewal a broken pair is
        refused and the old one kept. null: plain HTTP only.
      '';
    };
    gossip = mkOption {
      type = types.nullOr (
        types.submodule {
          options = {
            port = mkOption {
              type = types.port;
              default = 7946;
              description = "UDP and TCP port of the gossip between agents.";
            };
            address = mkOption {
              type = nonEmptyStr;
              default = "0.0.0.0";
              description = "Address gossip listens on.";
            };
            advertise = mkOption {
              type = types.nullOr nonEmptyStr;
              default = null;
              example = "10.0.0.1";
              description = "Address the other members reach this host at; null: the host's first non-loopback IPv4 address.";
            };
            seeds = mkOption {
              type = types.listOf nonEmptyStr;
              default = [ ];
              example = [
                "10.0.0.2:7946"
                "10.0.0.3:7946"
              ];
              description = ''
                `host:port` of agents to join at start (any one reachable member is enough). They are
                also tried again later, every 30 s or so, when they are not alive members: list hosts on
                every side a partition could cut (every host is fine), so that the cluster finds itself
                again even if every agent on one side restarted during the partition.
              '';
            };
            keyFile = mkOption {
              type = types.nullOr plainPath;
              readOnly = true;
              defaultText = lib.literalMD "read-only: the credential's path in the unit when `services.hashd.clusterKeyFile` is set";
              description = "Set from {option}`services.hashd.clusterKeyFile` (the credential's path in the unit); set that instead.";
            };
            name = mkOption {
              type = types.nullOr (strWith ".{1,253}" "string of 1 to 253 characters");
              default = null;
              description = "This member's name in the cluster; null: the host name.";
            };
          };
          # The one definition of the read-only keyFile: the credential, when there is a key.
          config.keyFile = if cfg.clusterKeyFile == null then null else keyCredentialPath;
        }
      );
      default = null;
      description = ''
        Gossip with the other agents of a cluster. null (the default) is a host that runs alone. It
        is set, with the defaults below, as soon as {option}`services.hashd.clusterKeyFile` is:
        gossip is sealed with that key, so a cluster needs it on every host.
      '';
    };
    retention = mkOption {
      type = types.submodule {
        options = {
          policy = mkOption {
            type = types.enum [
              "retire"
              "keep"
              "keep-last"
            ];
            default = "retire";
            description = "`retire`: stop an unwanted hash and drop its GC root; `keep`: keep it, scaled to zero; `keep-last`: keep the last {option}`count` targets of each alias.";
          };
          count = mkOption {
            type = types.nullOr (types.ints.between 1 maxKeepLast);
            default = null;
            description = "For `keep-last` only: how many targets of each alias to keep.";
          };
        };
      };
      default = { };
      example = {
        policy = "keep-last";
        count = 3;
      };
      description = "What happens to a hash that no alias, pin or wanted hash reaches any more.";
    };
    quietSec = mkOption {
      type = types.numbers.between 0 86400;
      default = 10;
      description = "How long, in seconds, an unwanted hash must be idle and unreferenced on every member before it retires.";
    };
    serviceUser = mkOption {
      type = types.nullOr (strWith "[a-z_][a-z0-9_-]*" "user name ([a-z_][a-z0-9_-]*)");
      default = null;
      description = "Run services as this (existing) user; null: each service gets its own DynamicUser=.";
    };
    readyTimeoutSec = mkOption {
      type = types.ints.between 1 3600;
      default = 120;
      description = "Default readiness wait of `hashd activate`, in seconds.";
    };
    credentials = mkOption {
      type = types.attrsOf (types.attrsOf plainPath);
      readOnly = true;
      defaultText = lib.literalMD "read-only: `services.hashd.credentials`";
      description = "Set from {option}`services.hashd.credentials`; set that instead.";
    };
    access = mkOption {
      type = types.submodule {
        options = {
          hashUrls = mkOption {
            type = types.nullOr (
              types.enum [
                "public"
                "aliased"
                "token"
              ]
            );
            default = null;
            example = "token";
            description = ''
              Who may reach hash URLs (`http://<hash>.<zone>/`, `/h/<hash>/`); alias URLs are always
              public. `public`: anyone. `aliased`: only hashes an alias points at now, others with the
              bypass token. `token`: every hash URL needs the bypass token. Services on the host
              (calling through the local ingress) and requests forwarded by a member are always let
              through. Without access a hash URL answers as an unknown hash does (404). null: the
              agent's default, `public` for a host that runs alone and `aliased` in a cluster.
            '';
          };
          bypassTokenFile = mkOption {
            type = types.nullOr plainPath;
            default = null;
            example = "/run/keys/hashd-bypass";
            description = ''
              File holding the bypass token of private previews (32 to 512 letters, digits and
              . _ ~ -: `openssl rand -hex 32`), the same on every host. A request carries it as the
              header `x-hashd-bypass: <token>`, or once as `?hashd-bypass=<token>`, which sets a cookie
              for that hash and redirects to the URL without it. The agent reads the file at start (a
              missing, empty or short token stops it) and again within 5 s of a change. Keep it
              root-only, outside the Nix store and /tmp; give its path as a string.
            '';
          };
        };
      };
      default = { };
      description = "Private previews: who may reach hash URLs, and the token that opens them.";
    };
    sticky = mkOption {
      type = types.submodule {
        options = {
          maxAgeSec = mkOption {
            type = types.ints.between 0 31536000;
            default = 3600;
            description = ''
              Skew protection: an alias response sets the cookie `hashd-<alias>=<hash>` (HttpOnly,
              SameSite=Lax) with this Max-Age, and a request that carries it stays on that hash while
              the hash runs anywhere, even after the alias moved on; the hash is kept (not retired)
              until the cookies of its last clients expire. 0 sets and follows no cookie.
            '';
          };
          disable = mkOption {
            type = types.listOf aliasName;
            default = [ ];
            example = [ "api" ];
            description = "Aliases whose responses set no sticky cookie (APIs whose clients keep no cookies).";
          };
        };
      };
      default = { };
      description = "Sticky cookies on alias requests (skew protection).";
    };
  };

  tokenFile = cfg.settings.access.bypassTokenFile;
  gossip = cfg.settings.gossip;
  tls = cfg.settings.tls;
  acmeHost = cfg.tls.useACMEHost;
  acmeCert = config.security.acme.certs.${acmeHost};
  ports = lib.filter (port: port != 0) (
    [
      cfg.settings.ingress.port
      cfg.settings.status.port
    ]
    ++ optional (gossip != null) gossip.port
    ++ optional (tls != null) tls.port
  );
  isLoopback = address: lib.hasPrefix "127." address || address == "::1" || address == "localhost";
  unknownKeys = lib.filter (key: !(settingsOptions ? ${key})) (lib.attrNames cfg.settings);

  renamed = from: to: lib.mkRenamedOptionModule ([ "services" "hashd" ] ++ from) ([ "services" "hashd" "settings" ] ++ to);
in
{
  # The options this module had before `settings` was typed.
  imports = [
    (renamed [ "zone" ] [ "zone" ])
    (renamed [ "substituters" ] [ "substituters" ])
    (renamed [ "stateDirectory" ] [ "stateDir" ])
    (renamed [ "ingress" "address" ] [ "ingress" "address" ])
    (renamed [ "ingress" "port" ] [ "ingress" "port" ])
    (renamed [ "statusPage" "address" ] [ "status" "address" ])
    (renamed [ "statusPage" "port" ] [ "status" "port" ])
    (renamed [ "gossip" "port" ] [ "gossip" "port" ])
    (renamed [ "gossip" "seeds" ] [ "gossip" "seeds" ])
  ];

  options.services.hashd = {
    enable = mkEnableOption "hashd, the agent that runs Nix service closures as socket-activated systemd units";

    package = mkOption {
      type = types.package;
      default =
        pkgs.hashd or (throw (
          "services.hashd.package: nixpkgs has no hashd. Import the module through hashd's flake "
          + "(hashd.nixosModules.default), or add hashd.overlays.default to nixpkgs.overlays, or set "
          + "services.hashd.package."
        ));
      defaultText = literalExpression "pkgs.hashd";
      description = "The hashd package (agent and CLI). hashd's flake module sets it to the flake's build; importing this file by path needs hashd's overlay (`hashd.overlays.default`) or a value here.";
    };

    clusterKeyFile = mkOption {
      type = types.nullOr plainPath;
      default = null;
      example = "/run/keys/hashd-cluster";
      description = ''
        File holding the key that seals gossip between agents (one base64 32-byte key per line, the
        first seals: `head -c 32 /dev/urandom | base64`), the same on every host. Setting it makes
        this host a cluster member ({option}`services.hashd.settings.gossip`). Read at run time
        through systemd's LoadCredential=, so it may be readable by root only; it is never copied
        into the Nix store. Give a path as a string, not a Nix path literal.
      '';
    };

    trustedPublicKeys = mkOption {
      type = types.listOf (strWith "[^:[:space:]]+:[A-Za-z0-9+/]{43}=" "Nix public key (name:base64, as `nix key convert-secret-to-public` prints it)");
      default = [ ];
      example = [ "laptop-1:kVnJIz6tRHqDjdh2QfoyoKn5XAh/TOFrBNyxPq0B2GM=" ];
      description = ''
        Public keys whose signatures this host accepts on service closures copied in by `hashd
        deploy` (`nix store sign`). Added to nix.settings.extra-trusted-public-keys, so the
        default cache key stays.
      '';
    };

    tls.useACMEHost = mkOption {
      type = types.nullOr nonEmptyStr;
      default = null;
      example = "svc.example.org";
      description = ''
        Serve HTTPS with the certificate of `security.acme.certs.<name>` (its `fullchain.pem` and
        `key.pem`): it must be a wildcard for `*.<zone>` and `<zone>`
        (`extraDomainNames = [ "*.<zone>" ]`, with `dnsProvider` set: a wildcard needs the DNS-01
        challenge). Sets {option}`services.hashd.settings.tls`'s files and gives the agent the
        certificate's group. A renewal needs nothing more: the agent reads the changed files by
        itself (no reloadServices, which would restart it).
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the ingress port (TCP) and, in a cluster, the gossip port (UDP and TCP). Never the status page.";
    };

    credentials = mkOption {
      type = types.attrsOf (types.attrsOf plainPath);
      default = { };
      example = literalExpression ''
        {
          api.db-url = "/run/agenix/db-url";
          api.stripe-key = "/etc/credstore.encrypted/stripe-key.cred";
        }
      '';
      description = ''
        The files of the credentials services name in their manifests
        (`lib.mkService { name = "api"; credentials = [ "db-url" ]; }`), by service name, then
        credential name. When a hash of that service starts, systemd reads the file (as root,
        LoadCredential=) and gives the program its own copy at `$CREDENTIALS_DIRECTORY/<name>`,
        which no other service can read; the value never enters the Nix store, the agent's state,
        gossip or its logs. A path ending in `.cred` is a file made by
        `systemd-creds encrypt --name=<name>` (LoadCredentialEncrypted=, decrypted with the host
        key or the TPM). Give paths as strings, outside the Nix store and /tmp. A host that runs no
        such service needs no entry; activating a hash whose credential is not mapped here, or
        whose file is missing, is refused before anything starts. After changing a file,
        `hashd restart <hash|alias>` makes the program read it.
      '';
    };

    settings = mkOption {
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = settingsOptions;
        # The one definition of the read-only credentials: the host's side, above.
        config.credentials = cfg.credentials;
      };
      default = { };
      example = literalExpression ''
        {
          zone = "svc.example.org";
          ingress.port = 8480;
          gossip.seeds = [ "10.0.0.2:7946" ];
          retention = { policy = "keep-last"; count = 3; };
        }
      '';
      description = ''
        The agent's configuration, written as JSON to ${configPath} and passed with `--config`
        (null options are left out). Every key the agent reads is an option below; other keys are
        passed through with a warning, since the agent refuses keys it does not know.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = gossip == null || cfg.clusterKeyFile != null;
        message =
          "services.hashd.settings.gossip is set, so this host would join a cluster, but services.hashd.clusterKeyFile is not: "
          + "gossip is sealed with a key shared by every host. Create one (head -c 32 /dev/urandom | base64 > /run/keys/hashd-cluster), "
          + "put the same file on every host, outside the Nix store, and set services.hashd.clusterKeyFile = \"/run/keys/hashd-cluster\"; "
          + "or remove settings.gossip for a host that runs alone.";
      }
      {
        assertion = cfg.clusterKeyFile == null || !(lib.hasPrefix "${builtins.storeDir}/" cfg.clusterKeyFile);
        message =
          "services.hashd.clusterKeyFile is ${toString cfg.clusterKeyFile}, in the Nix store, where every user can read it. "
          + "Keep the key in a root-only file outside the store (e.g. /run/keys/hashd-cluster, or a secret from agenix or sops-nix) "
          + "and give its path as a string.";
      }
      {
        assertion = lib.length (lib.unique ports) == lib.length ports;
        message =
          "services.hashd.settings: the ingress (ingress.port = ${toString cfg.settings.ingress.port}), the status page "
          + "(status.port = ${toString cfg.settings.status.port})"
          + lib.optionalString (gossip != null) " and gossip (gossip.port = ${toString gossip.port})"
          + lib.optionalString (tls != null) " and HTTPS (tls.port = ${toString tls.port})"
          + " need ports of their own: give each a different one.";
      }
      {
        assertion = tls == null || (tls.certificateFile != null && tls.keyFile != null);
        message =
          "services.hashd.settings.tls is set but its certificateFile or keyFile is not: give both (PEM: the wildcard "
          + "certificate for *.${cfg.settings.zone} with its chain, and its key), or set services.hashd.tls.useACMEHost "
          + "to the name of a security.acme.certs entry that has them.";
      }
      {
        assertion = acmeHost == null || config.security.acme.certs ? ${acmeHost};
        message =
          "services.hashd.tls.useACMEHost is \"${toString acmeHost}\", but security.acme.certs has no such entry: "
          + "declare security.acme.certs.\"${toString acmeHost}\" (with extraDomainNames = [ \"*.${cfg.settings.zone}\" ] "
          + "and a dnsProvider: a wildcard needs the DNS-01 challenge), or set services.hashd.settings.tls's files instead.";
      }
      {
        assertion =
          tls == null
          || lib.all (f: f == null || !(lib.hasPrefix "${builtins.storeDir}/" f)) [ tls.keyFile ];
        message =
          "services.hashd.settings.tls.keyFile is ${toString (if tls == null then "" else tls.keyFile)}, in the Nix store, "
          + "where every user can read it. Keep the key outside the store and give its path as a string.";
      }
      {
        assertion = cfg.settings.runtimeDir == "/run/hashd";
        message =
          "services.hashd.settings.runtimeDir is ${cfg.settings.runtimeDir}, but it must stay /run/hashd: the unit's "
          + "RuntimeDirectory=hashd (kept across agent restarts) is where the services' sockets live. Remove the definition.";
      }
      {
        assertion = badServiceNames == [ ];
        message =
          "services.hashd.credentials.${builtins.toJSON (lib.head badServiceNames)}: ${builtins.toJSON (lib.head badServiceNames)} is not a service name, "
          + "so no service could be given these credentials. Use the name the service's manifest has (lib.mkService { name = \"api\"; }): "
          + "1 to 64 letters, digits and . _ + -, starting with a letter or digit.";
      }
      {
        assertion = badCredentialNames == [ ];
        message =
          "${entryName (lib.head badCredentialNames)}: ${builtins.toJSON (lib.head badCredentialNames).name} is not a credential name. "
          + "Use the name the service's manifest lists (lib.mkService { credentials = [ \"db-url\" ]; }): "
          + "1 to 64 of a-z, 0-9 and _ . -, starting with a letter or digit.";
      }
      {
        assertion = crowdedServices == [ ] && lib.length (lib.attrNames cfg.credentials) <= credentialServicesMax;
        message =
          "services.hashd.credentials: a service may be given at most ${toString credentialsMax} credentials (a manifest names at most that many), "
          + "and a host may map them for at most ${toString credentialServicesMax} services; remove the entries no manifest names.";
      }
      {
        assertion = storeCredentials == [ ] && tmpCredentials == [ ];
        message =
          let e = lib.head (storeCredentials ++ tmpCredentials); in
          "${entryName e} is ${e.path}, "
          + (if storeCredentials != [ ] then "in the Nix store, where every user can read it. " else "in /tmp or /var/tmp, which the agent (PrivateTmp=) sees apart from systemd. ")
          + "Keep secrets in a root-only file outside the store and /tmp (e.g. /run/keys/<name>, or a secret from agenix or sops-nix) and give its path as a string.";
      }
      {
        assertion = tokenFile == null || !(lib.hasPrefix "${builtins.storeDir}/" tokenFile || builtins.match "/(var/)?tmp/.*" tokenFile != null);
        message =
          "services.hashd.settings.access.bypassTokenFile is ${toString tokenFile}, "
          + (if lib.hasPrefix "${builtins.storeDir}/" (toString tokenFile) then "in the Nix store, where every user can read it. " else "in /tmp or /var/tmp, which the agent (PrivateTmp=) sees apart from systemd. ")
          + "Keep the token in a root-only file outside the store and /tmp (e.g. /run/keys/hashd-bypass, or a secret from agenix or sops-nix) and give its path as a string.";
      }
      {
        assertion = (cfg.settings.retention.policy == "keep-last") == (cfg.settings.retention.count != null);
        message =
          if cfg.settings.retention.policy == "keep-last" then
            "services.hashd.settings.retention.policy is \"keep-last\": set services.hashd.settings.retention.count to how many targets of each alias to keep (1 to ${toString maxKeepLast})."
          else
            "services.hashd.settings.retention.count is only for policy \"keep-last\" (the policy is \"${cfg.settings.retention.policy}\"): remove count, or set retention.policy = \"keep-last\".";
      }
    ];

    warnings =
      optional (!isLoopback cfg.settings.status.address) (
        "services.hashd.settings.status.address is ${cfg.settings.status.address}: the status page has no authentication "
        + "and shows every service and host. Keep it on 127.0.0.1 and use an SSH tunnel."
      )
      ++ optional (cfg.openFirewall && isLoopback cfg.settings.ingress.address) (
        "services.hashd.openFirewall opens port ${toString cfg.settings.ingress.port}, but the ingress listens on "
        + "${cfg.settings.ingress.address} only (services.hashd.settings.ingress.address)."
      )
      ++ map (
        key:
        "services.hashd.settings.${key} is not a key this module knows, and the agent refuses keys it does not know: "
        + "hashd serve will not start. Remove it, unless services.hashd.package is a newer hashd that reads it."
      ) unknownKeys;

    # HTTPS with an ACME certificate: its files, read as its group (the unit has no capability to
    # read past file modes). The agent notices a renewal by itself, so no reloadServices.
    services.hashd.settings.tls = mkIf (acmeHost != null && config.security.acme.certs ? ${acmeHost}) {
      certificateFile = lib.mkDefault "${acmeCert.directory}/fullchain.pem";
      keyFile = lib.mkDefault "${acmeCert.directory}/key.pem";
    };
    # A reload binds a new listener beside the old one (SO_REUSEPORT) and closes the old: with this
    # the kernel hands connections queued on the old one to the new one instead of resetting them.
    boot.kernel.sysctl = mkIf (tls != null) { "net.ipv4.tcp_migrate_req" = lib.mkDefault 1; };

    # A cluster member: gossip with its defaults, sealed with the key (gossip.keyFile).
    services.hashd.settings.gossip = mkIf (cfg.clusterKeyFile != null) { };

    environment.etc."hashd/config.json".source = configFile;
    # The CLI on the host (`hashd status`, `hashd activate`) talks to the local agent.
    environment.systemPackages = [ cfg.package ];

    nix.settings.extra-trusted-public-keys = mkIf (cfg.trustedPublicKeys != [ ]) cfg.trustedPublicKeys;

    # The agent writes its GC roots (symlinks) here; it must exist before ReadWritePaths= binds it.
    systemd.tmpfiles.rules = [ "d ${cfg.settings.gcRootDir} 0755 root root - -" ];

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts = [
        cfg.settings.ingress.port
      ]
      ++ optional (gossip != null) gossip.port
      ++ optional (tls != null) tls.port;
      allowedUDPPorts = optional (gossip != null) gossip.port;
    };

    systemd.services.hashd = {
      description = "hashd agent: Nix service closures as socket-activated systemd units";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "nix-daemon.socket"
      ];
      # nix for copies and path-info; systemctl, systemd-run, systemd-notify and journalctl.
      path = [
        config.nix.package
        config.systemd.package
      ];
      # The config file is not in ExecStart, so name it here: a changed config restarts the agent,
      # which (KillMode=process, transient units) leaves every service running.
      restartTriggers = [ configFile ];
      # Restart in place on `nixos-rebuild switch` rather than stop, then start after the switch.
      stopIfChanged = false;
      serviceConfig =
        import ../nix/agent-unit.nix {
          inherit (lib) mkDefault;
          stateDirectory = lib.removePrefix "/var/lib/" cfg.settings.stateDir;
          gcRootDir = cfg.settings.gcRootDir;
          lowPorts = lib.any (port: port < 1024) ports;
          credentials = optional (cfg.clusterKeyFile != null) "cluster-key:${cfg.clusterKeyFile}";
        }
        // {
          ExecStart = "${lib.getExe cfg.package} serve --config ${configPath}";
        }
        // lib.optionalAttrs (acmeHost != null && config.security.acme.certs ? ${acmeHost}) {
          SupplementaryGroups = [ acmeCert.group ];
        };
    };
  };
}
