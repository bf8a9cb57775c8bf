import { describe, expect, test } from "bun:test";
import { parseManifest } from "../model/manifest.ts";
import {
  appEnvironment,
  appRunArgv,
  isProxied,
  journalUnitsOf,
  type ProxiedUnitSpec,
  proxyRunArgv,
  quoteExecArg,
  sharedUser,
  unitsOf,
  upstreamOf,
} from "./proxied-unit.ts";
import { stateUser } from "./service-identity.ts";
import { SERVICE_HARDENING, systemdRunArgv } from "./transient-unit.ts";
import { hashUnits } from "./unit-names.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const path = `/nix/store/${H}-backend`;
const units = hashUnits(H, "/run/hashd/sockets");
const helpers = {
  socketProxyd: "/run/hashd/bin/systemd-socket-proxyd",
  waitUpstream: ["/run/hashd/bin/hashd", "wait-upstream"],
};

function specFor(manifest: Record<string, unknown>, user?: string): ProxiedUnitSpec {
  return {
    units,
    storePath: path,
    manifest: parseManifest({
      schema: 1,
      name: "backend",
      exec: [`${path}/bin/server`, "--flag"],
      ...manifest,
    }),
    agentEnvironment: { HASHD_HASH: H },
    helpers,
    ...(user ? { user } : {}),
  };
}

const UNIX = { socket: { type: "unix" } };
const PORT = { socket: { type: "port", port: 8080 } };

/** The --property=/--socket-property= values of an argv, without the prefix. */
function props(argv: string[], prefix = "--property="): string[] {
  return argv.filter((a) => a.startsWith(prefix)).map((a) => a.slice(prefix.length));
}

const tail = (argv: string[]) => argv.slice(argv.indexOf("--") + 1);

describe("proxied unit generation", () => {
  test.each([
    [{ type: "fd" }, false],
    [{ type: "unix" }, true],
    [{ type: "port", port: 1 }, true],
  ])("socket %p is proxied: %p", (socket, proxied) => {
    expect(isProxied(specFor({ socket }).manifest)).toBe(proxied);
  });

  test.each([
    [UNIX, { unix: `/run/hashd/upstream/${H}/upstream.sock` }],
    [PORT, { hostname: "127.0.0.1", port: 8080 }],
  ])("upstream of %p", (m, upstream) => {
    expect(upstreamOf(units, specFor(m).manifest)).toEqual(upstream);
  });

  test("the shared dynamic user name fits systemd's 31 characters", () => {
    expect(sharedUser(H)).toBe("hashd-0c7v2bqvqbr3xq4ia4czb2kh1");
    expect(sharedUser(H).length).toBe(31);
  });

  test("step 1 creates the program's unit behind a timer that never elapses, the program as argv", () => {
    const argv = appRunArgv(specFor(UNIX));
    expect(argv.slice(0, 4)).toEqual([
      "systemd-run",
      "--quiet",
      "--collect",
      `--unit=hashd-${H}-app.service`,
    ]);
    expect(argv).toContain("--on-active=36500d");
    expect(argv.some((a) => a.startsWith("--socket-property="))).toBe(false);
    expect(tail(argv)).toEqual([`${path}/bin/server`, "--flag"]);
  });

  test("step 2 creates the unchanged socket and the proxy to the upstream", () => {
    const argv = proxyRunArgv(specFor(UNIX));
    expect(argv).toContain(`--unit=hashd-${H}`);
    expect(props(argv, "--socket-property=")).toEqual(
      props(systemdRunArgv(specFor({})), "--socket-property="),
    );
    expect(tail(argv)).toEqual([
      "/run/hashd/bin/systemd-socket-proxyd",
      "--connections-max=4096",
      `/run/hashd/upstream/${H}/upstream.sock`,
    ]);
    expect(tail(proxyRunArgv(specFor(PORT)))).toEqual([
      "/run/hashd/bin/systemd-socket-proxyd",
      "--connections-max=4096",
      "127.0.0.1:8080",
    ]);
  });

  // [mode, unit, must contain, must not contain]
  const cases: [string, "app" | "proxy", Record<string, unknown>, string[], string[]][] = [
    [
      "unix",
      "app",
      UNIX,
      [
        `PartOf=hashd-${H}.service`,
        `RuntimeDirectory=hashd/upstream/${H}`,
        "RuntimeDirectoryMode=0700",
        `ExecStartPost=/run/hashd/bin/hashd wait-upstream unix:/run/hashd/upstream/${H}/upstream.sock`,
        "DynamicUser=yes",
        `User=hashd-${H.slice(0, 25)}`,
        "Type=exec",
      ],
      ["PrivateNetwork=yes", "Type=notify"],
    ],
    [
      "port",
      "app",
      PORT,
      [
        `PartOf=hashd-${H}.service`,
        "PrivateNetwork=yes",
        "ExecStartPost=/run/hashd/bin/hashd wait-upstream tcp:127.0.0.1:8080",
      ],
      [`RuntimeDirectory=hashd/upstream/${H}`],
    ],
    [
      "unix",
      "proxy",
      UNIX,
      [
        "Type=exec",
        `BindsTo=hashd-${H}-app.service`,
        `After=hashd-${H}-app.service`,
        "PrivateNetwork=yes",
        "RestrictAddressFamilies=AF_UNIX",
        "DynamicUser=yes",
        `User=hashd-${H.slice(0, 25)}`,
        "SyslogIdentifier=backend-proxy",
      ],
      [`JoinsNamespaceOf=hashd-${H}-app.service`, "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"],
    ],
    [
      "port",
      "proxy",
      PORT,
      [
        `BindsTo=hashd-${H}-app.service`,
        "PrivateNetwork=yes",
        `JoinsNamespaceOf=hashd-${H}-app.service`,
        "RestrictAddressFamilies=AF_UNIX AF_INET",
      ],
      ["RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"],
    ],
  ];
  test.each(cases)("%s mode, %s unit", (_mode, unit, manifest, present, absent) => {
    const spec = specFor(manifest);
    const p = props(unit === "app" ? appRunArgv(spec) : proxyRunArgv(spec));
    for (const x of present) expect(p).toContain(x);
    for (const x of absent) expect(p).not.toContain(x);
  });

  test.each([
    ["app", appRunArgv],
    ["proxy", proxyRunArgv],
  ])("the %s unit is hardened like an fd service", (_name, argvOf) => {
    const p = props(argvOf(specFor(UNIX)));
    for (const h of SERVICE_HARDENING.filter((x) => !x.startsWith("RestrictAddressFamilies="))) {
      expect(p).toContain(h);
    }
    expect(p.filter((x) => x.startsWith("RestrictAddressFamilies="))).toHaveLength(1);
  });

  test("readiness notify makes the program's unit Type=notify; the proxy stays Type=exec", () => {
    const spec = specFor({ ...PORT, readiness: { type: "notify" } });
    expect(props(appRunArgv(spec))).toEqual(expect.arrayContaining(["Type=notify", "NotifyAccess=all"]));
    expect(props(proxyRunArgv(spec))).toContain("Type=exec");
  });

  test("credentials and state go to the program's unit only; with state both units run as the name's user", () => {
    for (const mode of [UNIX, PORT]) {
      const spec = {
        ...specFor({ ...mode, credentials: ["db-url"], stateDirectory: true }),
        credentials: [{ name: "db-url", path: "/run/agenix/db-url" }],
      };
      const app = props(appRunArgv(spec));
      const proxy = props(proxyRunArgv(spec));
      expect(app).toEqual(
        expect.arrayContaining([
          "LoadCredential=db-url:/run/agenix/db-url",
          "StateDirectory=hashd-state/backend",
          "DynamicUser=yes",
          `User=${stateUser("backend")}`,
        ]),
      );
      expect(proxy.filter((p) => /Credential|StateDirectory/.test(p))).toEqual([]);
      expect(proxy).toEqual(expect.arrayContaining(["DynamicUser=yes", `User=${stateUser("backend")}`]));
      expect(app.filter((p) => p.startsWith("User="))).toEqual(proxy.filter((p) => p.startsWith("User=")));
    }
    // without state, the per-hash user as before
    expect(props(appRunArgv(specFor(UNIX)))).toContain(`User=${sharedUser(H)}`);
  });

  test("a configured service user replaces the dynamic user on both units", () => {
    const spec = specFor(UNIX, "svc");
    for (const argv of [appRunArgv(spec), proxyRunArgv(spec)]) {
      expect(props(argv)).toContain("User=svc");
      expect(props(argv)).not.toContain("DynamicUser=yes");
    }
  });

  test("time-outs apply to both units; the environment and where to listen go to the program", () => {
    const spec = specFor({
      ...PORT,
      startTimeoutSec: 7,
      drainTimeoutSec: 9,
      environment: { A: "x", PORT: "1" },
    });
    for (const argv of [appRunArgv(spec), proxyRunArgv(spec)]) {
      expect(props(argv)).toEqual(expect.arrayContaining(["TimeoutStartSec=7s", "TimeoutStopSec=9s"]));
    }
    expect(appEnvironment(spec)).toEqual({ A: "x", HASHD_HASH: H, PORT: "8080" });
    expect(appRunArgv(spec)).toEqual(expect.arrayContaining(["--setenv=A=x", "--setenv=PORT=8080"]));
    expect(proxyRunArgv(spec).some((a) => a.startsWith("--setenv="))).toBe(false);
    expect(appEnvironment(specFor(UNIX)).HASHD_UPSTREAM).toBe(`/run/hashd/upstream/${H}/upstream.sock`);
  });

  test.each([
    ["/run/hashd/bin/hashd", "/run/hashd/bin/hashd"],
    ["unix:/run/x.sock", "unix:/run/x.sock"],
    ["/run/my dir/hashd", '"/run/my dir/hashd"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ["$HOME", '"$$HOME"'],
  ])("ExecStartPost argument %p is written as %p", (arg, quoted) => {
    expect(quoteExecArg(arg)).toBe(quoted);
  });
});

describe("which units a hash has, and which hold its output", () => {
  const fd = specFor({}).manifest;
  test("fd: the socket + service pair; the program is the service", () => {
    expect(unitsOf(units, fd)).toEqual([units.socket, units.service]);
    expect(journalUnitsOf(units, fd)).toBe(units.service);
  });
  test("proxied: also the program's own unit and its timer; output in the program's and the proxy's", () => {
    for (const mode of [UNIX, PORT]) {
      const m = specFor(mode).manifest;
      expect(unitsOf(units, m)).toEqual([units.socket, units.service, units.app, units.appTimer]);
      expect(journalUnitsOf(units, m)).toEqual([units.app, units.service]);
    }
  });
});
