# The agent's systemd [Service] settings, in the shape of NixOS's systemd.services.<name>.serviceConfig.
# Plain Nix (no nixpkgs), so that nixos-module/default.nix uses it and test/nix-lib.test.ts can run a
# stand-in agent under exactly these settings with `systemd-run -p ...` on a sandbox host (systemd 252).
#
# What the agent relies on (Type=notify, KillMode=process, its directories, credentials, environment)
# is set plainly; every tunable (watchdog, restarts, timeouts) and every hardening setting goes
# through `mkDefault`, which the module passes as lib.mkDefault, so that a plain definition in a
# host's configuration replaces it without lib.mkForce. (A list given that way replaces the default
# list; it is not appended to.)
{ stateDirectory ? "hashd"   # StateDirectory=, relative to /var/lib
, gcRootDir ? "/nix/var/nix/gcroots/hashd"
, lowPorts ? false           # does the agent bind a port below 1024?
, credentials ? [ ]          # LoadCredential= entries, "id:path"
, mkDefault ? (value: value) # lib.mkDefault in the module
}:
let
  # the tunables and the hardening
  defaults = builtins.mapAttrs (_: mkDefault) {
    WatchdogSec = 30;
    Restart = "on-failure";
    RestartSec = 2;
    # Re-adopting many units at start may take a while; drain happens in the services, not here.
    TimeoutStartSec = 120;
    TimeoutStopSec = 30;

    # Hardening
    # The agent is root (it drives PID 1 and the Nix daemon) but needs very little else:
    # - systemctl/systemd-run talk to PID 1 over /run/systemd/private or D-Bus and journalctl reads the
    #   journal: unix sockets and read-only files, which ProtectSystem=strict leaves alone. PID 1 allows
    #   root on those sockets by its uid, not by a capability (sd_bus_query_sender_privilege), so the
    #   bounding set can be empty; test/nixos-module.test.ts runs the agent under this unit on systemd
    #   252.
    # - Nix goes through the daemon (NIX_REMOTE=daemon), so /nix stays read-only here except the
    #   directory where the agent keeps its GC roots (symlinks, ReadWritePaths= below).
    # - Home directories are read-only, not hidden: nix looks at ~/.nix-defexpr at start (and aborts
    #   on EACCES, seen with nix 2.8), and `nix copy --from ssh-ng://...` needs root's ssh keys and
    #   known_hosts.
    # - Bun's JIT needs writable+executable memory: no MemoryDenyWriteExecute.
    ProtectSystem = "strict";
    ProtectHome = "read-only";
    PrivateTmp = true;
    PrivateDevices = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    NoNewPrivileges = true;
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "~@privileged" ];
    # A call outside the filter fails with EPERM instead of killing the agent (or the nix, ssh or
    # systemctl it runs, which inherit the filter). One is made at every start: SQLite, as root,
    # fchown()s its journal and WAL to the database's owner and ignores the error (fchown is in
    # @privileged; seen as SIGSYS with systemd 252 before this line).
    SystemCallErrorNumber = "EPERM";
    CapabilityBoundingSet = if lowPorts then [ "CAP_NET_BIND_SERVICE" ] else [ "" ];
    UMask = "0077";
  };
in
defaults // {
  # The agent says READY=1 and WATCHDOG=1 through the systemd-notify CLI (Bun has no datagram
  # sockets), a child process, so the unit must accept messages from any of its processes.
  Type = "notify";
  NotifyAccess = "all";

  # Restarting or upgrading the agent must never stop a service (docs/architecture.md, invariant 6).
  # The services are transient units of their own (hashd-<hash>.socket/.service, created by PID 1
  # through systemd-run), so they are not in this unit's cgroup and no KillMode reaches them.
  # KillMode=process makes that hold for anything else the agent starts as well: on stop or restart
  # only the agent's main process gets SIGTERM; a helper it forked (a `nix copy` in progress, a
  # readiness probe) is left to finish instead of being killed mid-way, and the new agent takes over
  # from its database and from systemd. The cost is that such a helper can outlive the agent, which
  # is why every call the agent makes has its own timeout.
  KillMode = "process";

  StateDirectory = stateDirectory;
  StateDirectoryMode = "0700";
  # /run/hashd holds control.sock and sockets/<hash>.sock, the listening sockets of every service's
  # socket unit. Without RuntimeDirectoryPreserve, stopping the agent would delete that directory and,
  # with it, the socket paths of services that keep running: their sockets would still listen, but
  # nobody could connect to them any more.
  RuntimeDirectory = "hashd";
  RuntimeDirectoryMode = "0755";
  RuntimeDirectoryPreserve = "yes";
  CacheDirectory = "hashd";
  CacheDirectoryMode = "0700";
  LoadCredential = credentials;
  Environment = [
    # Every nix command goes through the daemon: /nix/store stays read-only in this unit.
    "NIX_REMOTE=daemon"
    # nix keeps caches under $XDG_CACHE_HOME; the home directory is read-only here.
    "XDG_CACHE_HOME=/var/cache/hashd"
  ];

  # The one place the agent writes under /nix (created by the module's tmpfiles rule).
  ReadWritePaths = [ gcRootDir ];
}
