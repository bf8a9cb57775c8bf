/**
 * nixos-module/ under nixpkgs' real module system (lib.evalModules of nixpkgs' lib, Nix 2.8), with
 * the NixOS options it touches declared as nixpkgs declares them (test/nixos/nixos-options.nix):
 * the defaults, a cluster, every assertion, the type errors, the priorities of the unit's settings;
 * then the hashd.service it generates and the config.json it writes, run on real systemd 252 in the
 * sandbox: the compiled agent reaches READY with the defaults, and two hosts with the clustered
 * configuration start and join each other. test/nixos-module-schema.test.ts checks the module's
 * types against the agent's config schema.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { configSchema } from "../src/model/config.ts";
import { NixosEvaluator, unitSection } from "./nixos/evaluate.ts";
import { nixpkgsLib } from "./nixos/nixpkgs-lib.ts";
import { ensureBinary, GOSSIP_PORT, hashdJson, newClusterKey, waitFor } from "./sandbox/agent-host.ts";
import { type Host, Sandbox } from "./sandbox/harness.ts";
import { serviceExpr } from "./sandbox/service-closures.ts";

setDefaultTimeout(240_000);

const LIB = nixpkgsLib("the NixOS module tests (test/nixos-module.test.ts)");
const nixos = LIB ? new NixosEvaluator(LIB) : undefined;
const ev = () => nixos as NixosEvaluator;

const ENABLE = "{ services.hashd.enable = true; }";
const KEY = "/run/keys/hashd-cluster";
const CREDENTIAL = "/run/credentials/hashd.service/cluster-key";
const PUBLIC_KEY = "laptop-1:Fa3I1DawWjmy5WfS3QJe6nUgSUfH0mOI0mYFy9s84ss=";
const STORE_KEY = `/nix/store/${"4".repeat(32)}-key`;

describe.skipIf(!LIB)("the module, evaluated by nixpkgs' lib.evalModules", () => {
  test("enable alone: a host that runs alone, started by a unit the agent accepts", () => {
    const m = ev().summary(ENABLE);
    expect(m.failed).toEqual([]);
    expect(m.warnings).toEqual([]);
    const json = JSON.parse(m.json);
    // no gossip section: with one, the agent would start gossip and refuse to run without a key
    expect(json).toEqual({
      stateDir: "/var/lib/hashd",
      runtimeDir: "/run/hashd",
      gcRootDir: "/nix/var/nix/gcroots/hashd",
      zone: "localhost",
      substituters: [],
      ingress: { address: "0.0.0.0", port: 80 },
      status: { address: "127.0.0.1", port: 8481 },
      retention: { policy: "retire" },
      quietSec: 10,
      readyTimeoutSec: 120,
      credentials: {},
      access: {},
      sticky: { maxAgeSec: 3600, disable: [] },
    });
    expect(configSchema.parse(json)).toEqual(json);

    const service = unitSection(m.unit, "Service");
    expect(service).toContain(`ExecStart=${m.package}/bin/hashd serve --config /etc/hashd/config.json`);
    for (const line of [
      "Type=notify",
      "NotifyAccess=all",
      "KillMode=process",
      "WatchdogSec=30",
      "RuntimeDirectory=hashd",
      "RuntimeDirectoryPreserve=yes",
      "StateDirectory=hashd",
      "ReadWritePaths=/nix/var/nix/gcroots/hashd",
      "Environment=NIX_REMOTE=daemon",
      // port 80 needs it; nothing else
      "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
      "X-StopIfChanged=false",
    ])
      expect(service).toContain(line);
    expect(service.filter((l) => l.startsWith("LoadCredential="))).toEqual([]);
    expect(service.find((l) => l.startsWith('Environment="PATH='))).toMatch(
      /-nix-[^/]*\/bin:.*-systemd-[^/]*\/bin/,
    );
    expect(unitSection(m.unit, "Unit")).toEqual(
      expect.arrayContaining([
        "After=network-online.target nix-daemon.socket",
        "Wants=network-online.target",
      ]),
    );
    expect(unitSection(m.unit, "Install")).toEqual(["WantedBy=multi-user.target"]);
    expect(m.tmpfiles).toEqual(["d /nix/var/nix/gcroots/hashd 0755 root root - -"]);
    expect([m.tcp, m.udp, m.trusted]).toEqual([[], [], []]);
    expect(m.packages).toEqual(["hashd-0.1.0"]);
  });

  test("not enabled: nothing", () => {
    const r = ev().eval<Record<string, boolean>>(
      ["{ }"],
      `{ etc = c.environment.etc ? "hashd/config.json"; service = c.systemd.services ? hashd; }`,
    );
    expect(r).toEqual({ etc: false, service: false });
  });

  test("a cluster: the key as a credential, gossip, trusted keys, firewall", () => {
    const m = ev().summary(`{
      services.hashd = {
        enable = true;
        clusterKeyFile = "${KEY}";
        trustedPublicKeys = [ "${PUBLIC_KEY}" ];
        openFirewall = true;
        settings = {
          zone = "svc.example.org";
          ingress.port = 8480;
          gossip.seeds = [ "10.0.0.2:7946" ];
          retention = { policy = "keep-last"; count = 3; };
        };
      };
    }`);
    expect(m.failed).toEqual([]);
    expect(m.warnings).toEqual([]);
    const json = JSON.parse(m.json);
    expect(json.gossip).toEqual({
      port: 7946,
      address: "0.0.0.0",
      seeds: ["10.0.0.2:7946"],
      keyFile: CREDENTIAL,
    });
    expect(json).toMatchObject({
      zone: "svc.example.org",
      ingress: { address: "0.0.0.0", port: 8480 },
      retention: { policy: "keep-last", count: 3 },
    });
    expect(configSchema.parse(json)).toEqual(json);
    const service = unitSection(m.unit, "Service");
    expect(service).toContain(`LoadCredential=cluster-key:${KEY}`);
    // no port below 1024: no capability at all
    expect(service).toContain("CapabilityBoundingSet=");
    expect([m.tcp, m.udp]).toEqual([[7946, 8480], [7946]]);
    expect(m.trusted).toEqual([PUBLIC_KEY]);
  });

  test("a key alone makes a cluster member (gossip with its defaults), e.g. the first host", () => {
    const json = JSON.parse(
      ev().summary(`{ services.hashd = { enable = true; clusterKeyFile = "${KEY}"; }; }`).json,
    );
    expect(json.gossip).toEqual({ port: 7946, address: "0.0.0.0", seeds: [], keyFile: CREDENTIAL });
  });

  test("credentials: by service name and credential name, into the agent's config as given", () => {
    const credentials = {
      api: { "db-url": "/run/agenix/db-url", "stripe-key": "/etc/credstore.encrypted/stripe-key.cred" },
      "Web.v2+x": { token: "/run/keys/web@token" },
    };
    const m = ev().summary(`{
      services.hashd = {
        enable = true;
        credentials = builtins.fromJSON ${JSON.stringify(JSON.stringify(credentials))};
      };
    }`);
    expect(m.failed).toEqual([]);
    expect(m.warnings).toEqual([]);
    const json = JSON.parse(m.json);
    expect(json.credentials).toEqual(credentials);
    expect(configSchema.parse(json)).toEqual(json);
    // the agent's own unit loads none of them: systemd hands each to the services that name it
    expect(unitSection(m.unit, "Service").filter((l) => l.startsWith("LoadCredential="))).toEqual([]);
  });

  test("access (private previews): the mode and the token file go into the agent's config as given", () => {
    const m = ev().summary(`{
      services.hashd = {
        enable = true;
        settings.access = { hashUrls = "token"; bypassTokenFile = "/run/keys/hashd-bypass"; };
      };
    }`);
    expect(m.failed).toEqual([]);
    expect(m.warnings).toEqual([]);
    const json = JSON.parse(m.json);
    expect(json.access).toEqual({ hashUrls: "token", bypassTokenFile: "/run/keys/hashd-bypass" });
    expect(configSchema.parse(json)).toEqual(json);
    // left out, the agent decides: public alone, aliased in a cluster (src/model/config.ts hashUrlAccess)
    const clustered = JSON.parse(
      ev().summary(`{ services.hashd = { enable = true; clusterKeyFile = "${KEY}"; }; }`).json,
    );
    expect(clustered.access).toEqual({});
    // the token file is read by the agent at run time: not a credential of its unit, never in the store
    expect(unitSection(m.unit, "Service").filter((l) => l.startsWith("LoadCredential="))).toEqual([]);
    const tmp = ev().summary(ENABLE, '{ services.hashd.settings.access.bypassTokenFile = "/tmp/bypass"; }');
    expect(tmp.failed).toEqual([
      "services.hashd.settings.access.bypassTokenFile is /tmp/bypass, in /tmp or /var/tmp, which the agent (PrivateTmp=) " +
        "sees apart from systemd. Keep the token in a root-only file outside the store and /tmp (e.g. /run/keys/hashd-bypass, " +
        "or a secret from agenix or sops-nix) and give its path as a string.",
    ]);
  });

  test("the unit's tunables and hardening take a plain definition; what the agent relies on needs mkForce", () => {
    const m = ev().summary(
      ENABLE,
      `{ systemd.services.hashd.serviceConfig = {
          WatchdogSec = 60; TimeoutStopSec = 90; RestartSec = 5; ProtectHome = true;
          SystemCallFilter = [ "@system-service" ];
          ReadWritePaths = [ "/srv/extra" ];
      }; }`,
    );
    const service = unitSection(m.unit, "Service");
    for (const line of ["WatchdogSec=60", "TimeoutStopSec=90", "RestartSec=5", "ProtectHome=true"])
      expect(service).toContain(line);
    expect(service.filter((l) => /^(WatchdogSec|ProtectHome)=/.test(l))).toHaveLength(2);
    // a list given plainly replaces the default list ...
    expect(service.filter((l) => l.startsWith("SystemCallFilter="))).toEqual([
      "SystemCallFilter=@system-service",
    ]);
    // ... except the module's own, which stay and are added to
    expect(service.filter((l) => l.startsWith("ReadWritePaths="))).toEqual([
      "ReadWritePaths=/nix/var/nix/gcroots/hashd",
      "ReadWritePaths=/srv/extra",
    ]);
    const error = ev().failure([ENABLE, '{ systemd.services.hashd.serviceConfig.KillMode = "mixed"; }']);
    expect(error).toContain(
      "systemd.services.hashd.serviceConfig.KillMode' has conflicting definition values",
    );
    const forced = ev().summary(
      ENABLE,
      '{ systemd.services.hashd.serviceConfig.KillMode = lib.mkForce "mixed"; }',
    );
    expect(unitSection(forced.unit, "Service")).toContain("KillMode=mixed");
  });

  test("the package: nixpkgs has none, and the error says which entry point gives one", () => {
    const error = ev().failure([ENABLE], "c.system.build.toplevel", false);
    expect(error).toContain(
      "services.hashd.package: nixpkgs has no hashd. Import the module through hashd's flake (hashd.nixosModules.default), " +
        "or add hashd.overlays.default to nixpkgs.overlays, or set services.hashd.package.",
    );
  });

  // Each row fails one assertion; together they fail every assertion the module has.
  const assertions: [string, string, string][] = [
    [
      "gossip settings without a key",
      '{ services.hashd.settings.gossip.seeds = [ "10.0.0.2:7946" ]; }',
      "services.hashd.settings.gossip is set, so this host would join a cluster, but services.hashd.clusterKeyFile is not: " +
        "gossip is sealed with a key shared by every host. Create one (head -c 32 /dev/urandom | base64 > /run/keys/hashd-cluster), " +
        'put the same file on every host, outside the Nix store, and set services.hashd.clusterKeyFile = "/run/keys/hashd-cluster"; ' +
        "or remove settings.gossip for a host that runs alone.",
    ],
    [
      "a key in the Nix store",
      `{ services.hashd.clusterKeyFile = "${STORE_KEY}"; }`,
      `services.hashd.clusterKeyFile is ${STORE_KEY}, in the Nix store, where every user can read it. ` +
        "Keep the key in a root-only file outside the store (e.g. /run/keys/hashd-cluster, or a secret from agenix or sops-nix) " +
        "and give its path as a string.",
    ],
    [
      "two listeners on one port",
      `{ services.hashd = { clusterKeyFile = "${KEY}"; settings.gossip.port = 8481; }; }`,
      "services.hashd.settings: the ingress (ingress.port = 80), the status page (status.port = 8481) and gossip " +
        "(gossip.port = 8481) need ports of their own: give each a different one.",
    ],
    [
      "another runtime directory",
      '{ services.hashd.settings.runtimeDir = "/run/other"; }',
      "services.hashd.settings.runtimeDir is /run/other, but it must stay /run/hashd: the unit's RuntimeDirectory=hashd " +
        "(kept across agent restarts) is where the services' sockets live. Remove the definition.",
    ],
    [
      "credentials of a name no service can have",
      '{ services.hashd.credentials."api/v1".db-url = "/run/keys/db-url"; }',
      'services.hashd.credentials."api/v1": "api/v1" is not a service name, so no service could be given these credentials. ' +
        'Use the name the service\'s manifest has (lib.mkService { name = "api"; }): 1 to 64 letters, digits and . _ + -, ' +
        "starting with a letter or digit.",
    ],
    [
      "a credential name no manifest can list",
      '{ services.hashd.credentials.api.DB_URL = "/run/keys/db-url"; }',
      'services.hashd.credentials."api"."DB_URL": "DB_URL" is not a credential name. Use the name the service\'s manifest ' +
        'lists (lib.mkService { credentials = [ "db-url" ]; }): 1 to 64 of a-z, 0-9 and _ . -, starting with a letter or digit.',
    ],
    [
      "more credentials for a service than a manifest can name",
      `{ services.hashd.credentials.api = builtins.listToAttrs (builtins.genList (i: { name = "c\${toString i}"; value = "/run/keys/c\${toString i}"; }) 33); }`,
      "services.hashd.credentials: a service may be given at most 32 credentials (a manifest names at most that many), " +
        "and a host may map them for at most 1024 services; remove the entries no manifest names.",
    ],
    [
      "a credential in the Nix store",
      `{ services.hashd.credentials.api.db-url = "${STORE_KEY}"; }`,
      `services.hashd.credentials."api"."db-url" is ${STORE_KEY}, in the Nix store, where every user can read it. ` +
        "Keep secrets in a root-only file outside the store and /tmp (e.g. /run/keys/<name>, or a secret from agenix or sops-nix) " +
        "and give its path as a string.",
    ],
    [
      "a bypass token in the Nix store",
      `{ services.hashd.settings.access.bypassTokenFile = "${STORE_KEY}"; }`,
      `services.hashd.settings.access.bypassTokenFile is ${STORE_KEY}, in the Nix store, where every user can read it. ` +
        "Keep the token in a root-only file outside the store and /tmp (e.g. /run/keys/hashd-bypass, or a secret from " +
        "agenix or sops-nix) and give its path as a string.",
    ],
    [
      "HTTPS without its files",
      "{ services.hashd.settings.tls.port = 443; }",
      "services.hashd.settings.tls is set but its certificateFile or keyFile is not: give both (PEM: the wildcard " +
        "certificate for *.localhost with its chain, and its key), or set services.hashd.tls.useACMEHost " +
        "to the name of a security.acme.certs entry that has them.",
    ],
    [
      "an ACME host that is not declared",
      '{ services.hashd.tls.useACMEHost = "svc.example.org"; services.hashd.settings.tls.certificateFile = "/c.pem"; services.hashd.settings.tls.keyFile = "/k.pem"; }',
      'services.hashd.tls.useACMEHost is "svc.example.org", but security.acme.certs has no such entry: declare ' +
        'security.acme.certs."svc.example.org" (with extraDomainNames = [ "*.localhost" ] and a dnsProvider: a wildcard ' +
        "needs the DNS-01 challenge), or set services.hashd.settings.tls's files instead.",
    ],
    [
      "a TLS key in the Nix store",
      `{ services.hashd.settings.tls = { certificateFile = "/c.pem"; keyFile = "${STORE_KEY}"; }; }`,
      `services.hashd.settings.tls.keyFile is ${STORE_KEY}, in the Nix store, where every user can read it. ` +
        "Keep the key outside the store and give its path as a string.",
    ],
    [
      "keep-last without a count",
      '{ services.hashd.settings.retention.policy = "keep-last"; }',
      'services.hashd.settings.retention.policy is "keep-last": set services.hashd.settings.retention.count to how many ' +
        "targets of each alias to keep (1 to 10).",
    ],
  ];
  test.each(assertions)("assertion: %s", (_what, module, message) => {
    const m = ev().summary(ENABLE, module);
    expect(m.failed).toEqual([message]);
  });

  test("HTTPS with an ACME certificate: its files, its group, the sysctl, the port; no reloadServices", () => {
    const m = ev().summary(`{
      services.hashd = {
        enable = true;
        openFirewall = true;
        settings.zone = "svc.example.org";
        settings.tls.redirectHttp = true;
        tls.useACMEHost = "svc.example.org";
      };
      security.acme.certs."svc.example.org" = {
        extraDomainNames = [ "*.svc.example.org" ];
        dnsProvider = "rfc2136";
        group = "hashd-certs";
      };
    }`);
    expect(m.failed).toEqual([]);
    expect(m.warnings).toEqual([]);
    const json = JSON.parse(m.json);
    expect(json.tls).toEqual({
      certificateFile: "/var/lib/acme/svc.example.org/fullchain.pem",
      keyFile: "/var/lib/acme/svc.example.org/key.pem",
      port: 443,
      redirectHttp: true,
      checkSec: 10,
    });
    expect(configSchema.parse(json)).toEqual(json);
    const service = unitSection(m.unit, "Service");
    expect(service).toContain("SupplementaryGroups=hashd-certs");
    // port 443 and 80: the unit keeps CAP_NET_BIND_SERVICE
    expect(service).toContain("CapabilityBoundingSet=CAP_NET_BIND_SERVICE");
    expect(m.tcp).toEqual([80, 443]);
    const extra = ev().eval<{ sysctl: unknown; reload: string[] }>(
      [
        `{ services.hashd = { enable = true; tls.useACMEHost = "a"; }; security.acme.certs.a.extraDomainNames = [ "*.localhost" ]; }`,
      ],
      `{ sysctl = c.boot.kernel.sysctl."net.ipv4.tcp_migrate_req"; reload = c.security.acme.certs.a.reloadServices; }`,
    );
    expect(extra).toEqual({ sysctl: 1, reload: [] });
  });

  test("HTTPS with files of its own; none: no TLS key in the agent's config", () => {
    const m = ev().summary(
      '{ services.hashd = { enable = true; settings.tls = { certificateFile = "/etc/hashd/cert.pem"; keyFile = "/run/keys/hashd-tls.key"; port = 8443; }; }; }',
    );
    expect(m.failed).toEqual([]);
    expect(JSON.parse(m.json).tls).toMatchObject({ certificateFile: "/etc/hashd/cert.pem", port: 8443 });
    expect(unitSection(m.unit, "Service").some((l) => l.startsWith("SupplementaryGroups="))).toBe(false);
    expect(JSON.parse(ev().summary(ENABLE).json).tls).toBeUndefined();
  });

  test("every assertion is covered above, and each says what to do on one line", () => {
    expect(ev().summary(ENABLE).assertions).toBe(assertions.length);
    // a count without keep-last is the same assertion's other message
    const count = ev().summary(ENABLE, "{ services.hashd.settings.retention.count = 3; }");
    expect(count.failed).toEqual([
      'services.hashd.settings.retention.count is only for policy "keep-last" (the policy is "retire"): remove count, ' +
        'or set retention.policy = "keep-last".',
    ]);
    for (const [, , message] of assertions) expect(message).not.toContain("\n");
    // a credential in /tmp is the store assertion's other message
    const tmp = ev().summary(ENABLE, '{ services.hashd.credentials.api.db-url = "/tmp/db-url"; }');
    expect(tmp.failed).toEqual([
      'services.hashd.credentials."api"."db-url" is /tmp/db-url, in /tmp or /var/tmp, which the agent (PrivateTmp=) sees ' +
        "apart from systemd. Keep secrets in a root-only file outside the store and /tmp (e.g. /run/keys/<name>, or a " +
        "secret from agenix or sops-nix) and give its path as a string.",
    ]);
    // as nixos-rebuild shows them
    const error = ev().failure([ENABLE, assertions[0]?.[1] as string, assertions[3]?.[1] as string]);
    expect(error).toContain(
      `Failed assertions:\n       - ${assertions[0]?.[2]}\n       - ${assertions[3]?.[2]}`,
    );
  });

  test("warnings: a public status page, an open firewall for a loopback ingress, an unknown key, an old option", () => {
    const m = ev().summary(`{
      services.hashd = {
        enable = true;
        openFirewall = true;
        settings.status.address = "0.0.0.0";
        settings.ingress.address = "127.0.0.1";
        settings.logLevel = "debug";
        zone = "svc.example.org";
      };
    }`);
    expect(m.warnings.sort()).toEqual(
      [
        "services.hashd.settings.status.address is 0.0.0.0: the status page has no authentication and shows every " +
          "service and host. Keep it on 127.0.0.1 and use an SSH tunnel.",
        "services.hashd.openFirewall opens port 80, but the ingress listens on 127.0.0.1 only " +
          "(services.hashd.settings.ingress.address).",
        "services.hashd.settings.logLevel is not a key this module knows, and the agent refuses keys it does not know: " +
          "hashd serve will not start. Remove it, unless services.hashd.package is a newer hashd that reads it.",
        expect.stringContaining("The option `services.hashd.zone' defined in "),
      ].sort(),
    );
    expect(m.warnings.join("\n")).toContain("has been renamed to `services.hashd.settings.zone'.");
    expect(JSON.parse(m.json)).toMatchObject({ zone: "svc.example.org", logLevel: "debug" });
  });

  test("the options of the module before settings was typed still work, with a warning each", () => {
    const m = ev().summary(`{
      services.hashd = {
        enable = true;
        ingress = { address = "10.0.0.1"; port = 8480; };
        statusPage.port = 9000;
        gossip = { port = 7000; seeds = [ "10.0.0.2:7000" ]; };
        clusterKeyFile = "${KEY}";
        substituters = [ "ssh-ng://builder" ];
        stateDirectory = "/var/lib/hashd2";
      };
    }`);
    expect(m.failed).toEqual([]);
    expect(m.warnings).toHaveLength(7);
    expect(JSON.parse(m.json)).toMatchObject({
      ingress: { address: "10.0.0.1", port: 8480 },
      status: { port: 9000 },
      gossip: { port: 7000, seeds: ["10.0.0.2:7000"] },
      substituters: ["ssh-ng://builder"],
      stateDir: "/var/lib/hashd2",
    });
    expect(unitSection(m.unit, "Service")).toContain("StateDirectory=hashd2");
  });

  // A wrong value fails evaluation, and the error names the option and what it takes.
  const typeErrors: [string, string, string][] = [
    [
      "a port given as a string",
      'settings.ingress.port = "8080";',
      "A definition for option `services.hashd.settings.ingress.port' is not of type `16 bit unsigned integer; between 0 and 65535 (both inclusive)'",
    ],
    [
      "a relative key file",
      'clusterKeyFile = "keys/cluster";',
      "A definition for option `services.hashd.clusterKeyFile' is not of type `null or absolute path as a string",
    ],
    [
      "a key file as a Nix path (it would be copied into the store)",
      "clusterKeyFile = /run/keys/hashd-cluster;",
      "A definition for option `services.hashd.clusterKeyFile' is not of type `null or absolute path",
    ],
    [
      "a zone that is no DNS name",
      'settings.zone = "Bad_Zone";',
      "A definition for option `services.hashd.settings.zone' is not of type `DNS name",
    ],
    [
      "a state directory outside /var/lib",
      'settings.stateDir = "/srv/hashd";',
      "A definition for option `services.hashd.settings.stateDir' is not of type `directory under /var/lib",
    ],
    [
      "a timeout out of range",
      "settings.readyTimeoutSec = 0;",
      "A definition for option `services.hashd.settings.readyTimeoutSec' is not of type `integer between 1 and 3600",
    ],
    [
      "a number as a string",
      'settings.quietSec = "10";',
      "A definition for option `services.hashd.settings.quietSec' is not of type `integer or floating point number between 0 and 86400",
    ],
    [
      "an unknown retention policy",
      'settings.retention.policy = "forever";',
      'A definition for option `services.hashd.settings.retention.policy\' is not of type `one of "retire", "keep", "keep-last"\'',
    ],
    [
      "an unknown access mode",
      'settings.access.hashUrls = "private";',
      'A definition for option `services.hashd.settings.access.hashUrls\' is not of type `null or one of "public", "aliased", "token"\'',
    ],
    [
      "a bypass token in place of its file",
      'settings.access.bypassTokenFile = "0123456789abcdef0123456789abcdef";',
      "A definition for option `services.hashd.settings.access.bypassTokenFile' is not of type `null or absolute path as a string",
    ],
    [
      "seeds as one string",
      'clusterKeyFile = "/run/keys/k"; settings.gossip.seeds = "10.0.0.2:7946";',
      "A definition for option `services.hashd.settings.gossip.seeds' is not of type `list of non-empty string'",
    ],
    [
      "a malformed public key",
      'trustedPublicKeys = [ "laptop-1:..." ];',
      'A definition for option `services.hashd.trustedPublicKeys."[definition 1-entry 1]"\' is not of type `Nix public key',
    ],
    [
      "the key file in settings",
      `clusterKeyFile = "${KEY}"; settings.gossip.keyFile = "/etc/hashd/key";`,
      "The option `services.hashd.settings.gossip.keyFile' is read-only, but it's set multiple times.",
    ],
    [
      "a relative credential file",
      'credentials.api.db-url = "agenix/db-url";',
      "A definition for option `services.hashd.credentials.api.db-url' is not of type `absolute path as a string",
    ],
    [
      "a credential file as a Nix path (it would be copied into the store)",
      "credentials.api.db-url = /run/agenix/db-url;",
      "A definition for option `services.hashd.credentials.api.db-url' is not of type `absolute path as a string",
    ],
    [
      "a credential value in place of a file",
      'credentials.api.db-url = "postgres://user:pw@db/app";',
      "A definition for option `services.hashd.credentials.api.db-url' is not of type `absolute path as a string",
    ],
    [
      "credentials in settings",
      'settings.credentials.api.db-url = "/run/keys/db-url";',
      "The option `services.hashd.settings.credentials' is read-only, but it's set multiple times.",
    ],
    [
      "a misspelt key in a section",
      "settings.ingress.prot = 8080;",
      "The option `services.hashd.settings.ingress.prot' does not exist.",
    ],
  ];
  test.each(typeErrors)("refused at evaluation: %s", (_what, definition, message) => {
    const error = ev().failure([`{ services.hashd = { enable = true; ${definition} }; }`]);
    expect(error.replace(/\s+/g, " ")).toContain(message);
  });
});

// ---------------------------------------------------------------------------------------------------
// The generated unit and config on systemd 252: the compiled agent under exactly that unit text, with
// the store paths it names provided in each host's private store (the hashd package holds dist/hashd;
// nix, systemd, coreutils, ... are links to the host's /usr/bin and /usr/sbin).

interface Generated {
  unit: string;
  json: string;
  tmpfiles: string[];
  package: string;
}

async function install(host: Host, g: Generated): Promise<void> {
  const storeDirs = new Set(g.unit.match(/\/nix\/store\/[0-9a-df-np-sv-z]{32}-[^/:"\s]+/g) ?? []);
  storeDirs.delete(g.package);
  for (const dir of storeDirs)
    await host.run([
      "sh",
      "-c",
      `mkdir -p ${dir} && ln -sfn /usr/bin ${dir}/bin && ln -sfn /usr/sbin ${dir}/sbin`,
    ]);
  await host.installBinary(await ensureBinary(), `${g.package}/bin/hashd`);
  // the CLI on the PATH, as environment.systemPackages puts it on NixOS
  await host.run(["ln", "-sfn", `${g.package}/bin/hashd`, "/usr/local/bin/hashd"]);
  await host.writeFile("/etc/hashd/config.json", g.json);
  await host.writeFile("/etc/tmpfiles.d/hashd.conf", `${g.tmpfiles.join("\n")}\n`);
  await host.run(["systemd-tmpfiles", "--create", "/etc/tmpfiles.d/hashd.conf"]);
  await host.writeFile("/etc/systemd/system/hashd.service", g.unit);
  await host.run(["systemctl", "daemon-reload"]);
}

/** (Re)starts hashd.service; with Type=notify, systemctl returns once the agent said READY=1. */
async function start(host: Host): Promise<void> {
  const r = await host.exec(["systemctl", "restart", "hashd.service"], { timeoutMs: 150_000 });
  if (r.code !== 0) {
    const journal = await host.exec(["journalctl", "--no-pager", "-n", "60", "-u", "hashd.service"]);
    throw new Error(`${host.name}: hashd.service did not start:\n${r.stderr}\n${journal.stdout}`);
  }
  const state = await host.run(["systemctl", "show", "-p", "ActiveState,SubState", "hashd.service"]);
  expect(state.trim().split("\n").sort()).toEqual(["ActiveState=active", "SubState=running"]);
}

interface Members {
  self: string;
  members: { name: string; state: string }[];
}

describe.skipIf(!LIB)("the generated hashd.service on systemd 252", () => {
  let sb: Sandbox | undefined;
  let a: Host;
  let b: Host;

  beforeAll(async () => {
    sb = await Sandbox.create({ hosts: ["a", "b"] });
    [a, b] = [sb.host("a"), sb.host("b")];
  }, 240_000);
  afterAll(async () => {
    await sb?.destroy();
  });

  const generated = (...modules: string[]) => {
    const m = ev().summary(...modules);
    expect({ failed: m.failed, warnings: m.warnings }).toEqual({ failed: [], warnings: [] });
    return m;
  };

  test("enable alone: the agent reaches READY and runs alone", async () => {
    await install(a, generated(ENABLE));
    await start(a);
    expect(await hashdJson<Members>(a, ["members"])).toEqual({ self: "a", members: [] });
    // the unit's settings are in force: no capability but the low port's, the state directory
    const props = await a.run([
      "systemctl",
      "show",
      "-p",
      "CapabilityBoundingSet,StateDirectory",
      "hashd.service",
    ]);
    expect(props).toContain("CapabilityBoundingSet=cap_net_bind_service");
    expect(await a.run(["stat", "-c", "%a", "/var/lib/hashd"])).toBe("700\n");
    // and under them it does its job: a closure activated, its GC root written, served on port 80
    const path = await a.nixBuild(serviceExpr({ name: "module-default" }));
    const hash = path.slice("/nix/store/".length, "/nix/store/".length + 32);
    const r = await hashdJson<{ deployment: { state: string } }>(a, ["activate", path]);
    expect(r.deployment.state).toBe("ready");
    expect((await a.run(["readlink", `/nix/var/nix/gcroots/hashd/${hash}`])).trim()).toBe(path);
    const answer = await a.run([
      "curl",
      "-sS",
      "--max-time",
      "10",
      "-H",
      `Host: ${hash}.localhost`,
      "http://127.0.0.1/",
    ]);
    expect(answer).toStartWith(`module-default 1 ${hash}`);
  });

  test("credentials: under the module's unit (no capability, PrivateTmp) the agent checks the files, and the service reads its own", async () => {
    await a.run(["install", "-d", "-m", "700", "/run/keys"]);
    await a.writeFile("/run/keys/module-db-url", "module secret", 0o400);
    await install(
      a,
      generated(`{ services.hashd = {
        enable = true;
        credentials.module-cred.db-url = "/run/keys/module-db-url";
        credentials.module-missing.db-url = "/run/keys/not-there";
      }; }`),
    );
    await start(a);
    const path = await a.nixBuild(
      serviceExpr({ name: "module-cred", credentials: ["db-url"], stateDirectory: true }),
    );
    const hash = path.slice("/nix/store/".length, "/nix/store/".length + 32);
    expect((await hashdJson<{ deployment: { state: string } }>(a, ["activate", path])).deployment.state).toBe(
      "ready",
    );
    const get = (p: string) =>
      a.run(["curl", "-sS", "--max-time", "10", "-H", `Host: ${hash}.localhost`, `http://127.0.0.1${p}`]);
    expect(await get("/cred/db-url")).toBe("module secret");
    expect(await get("/state/write/f/x")).toStartWith("wrote f");
    const missing = await a.nixBuild(serviceExpr({ name: "module-missing", credentials: ["db-url"] }));
    const r = await a.exec(["/usr/local/bin/hashd", "activate", missing]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("/run/keys/not-there does not exist");
  });

  test("clustered: both agents reach READY with the key as a credential, and join", async () => {
    const key = newClusterKey();
    const clustered = (seed: Host) =>
      generated(`{ services.hashd = {
        enable = true;
        clusterKeyFile = "${KEY}";
        settings.gossip.seeds = [ "${seed.ip}:${GOSSIP_PORT}" ];
      }; }`);
    await Promise.all(
      [
        [a, b],
        [b, a],
      ].map(async ([host, seed]) => {
        const h = host as Host;
        await h.run(["install", "-d", "-m", "700", "/run/keys"]);
        await h.writeFile(KEY, `${key}\n`, 0o600);
        await install(h, clustered(seed as Host));
        await start(h);
      }),
    );
    for (const h of [a, b]) {
      const alive = await waitFor(`${h.name} to see both members alive`, async () => {
        const r = await hashdJson<Members>(h, ["members"]);
        const names = r.members.filter((m) => m.state === "alive").map((m) => m.name);
        return names.length === 2 ? names.sort() : undefined;
      });
      expect(alive).toEqual(["a", "b"]);
    }
  });
});
