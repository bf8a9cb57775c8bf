import { describe, expect, test } from "bun:test";
import { parseManifest } from "../model/manifest.ts";
import { stateUser } from "./service-identity.ts";
import { SERVICE_HARDENING, systemdRunArgv } from "./transient-unit.ts";
import { hashOfUnit, hashUnits } from "./unit-names.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const path = `/nix/store/${H}-backend`;

function argvFor(
  manifest: Record<string, unknown>,
  user?: string,
  credentials?: { name: string; path: string }[],
) {
  return systemdRunArgv({
    units: hashUnits(H, "/run/hashd/sockets"),
    storePath: path,
    manifest: parseManifest({
      schema: 1,
      name: "backend",
      exec: [`${path}/bin/server`, "--flag"],
      ...manifest,
    }),
    agentEnvironment: { HASHD_HASH: H },
    ...(user ? { user } : {}),
    ...(credentials ? { credentials } : {}),
  });
}

describe("unit names", () => {
  test("derive from the hash only", () => {
    expect(hashUnits(H, "/run/hashd/sockets")).toEqual({
      hash: H,
      base: `hashd-${H}`,
      socket: `hashd-${H}.socket`,
      service: `hashd-${H}.service`,
      app: `hashd-${H}-app.service`,
      appTimer: `hashd-${H}-app.timer`,
      socketPath: `/run/hashd/sockets/${H}.sock`,
    });
    expect(hashOfUnit(`hashd-${H}.service`)).toBe(H);
    expect(hashOfUnit(`hashd-${H}-app.service`)).toBe(H);
    expect(hashOfUnit(`hashd-${H}-app.socket`)).toBeUndefined();
    expect(hashOfUnit(`hashd-${H}.mount`)).toBeUndefined();
    expect(hashOfUnit("sshd.service")).toBeUndefined();
  });

  test.each(["x", `${H}/../..`, `${H}\n`, "a".repeat(32).replace("a", "E")])("refuse %p as a hash", (bad) => {
    expect(() => hashUnits(bad, "/run/hashd/sockets")).toThrow(/not a store hash/);
  });
});

describe("systemd-run argv", () => {
  test("creates the socket + service pair under the hash's name with the program as argv", () => {
    const argv = argvFor({});
    expect(argv[0]).toBe("systemd-run");
    expect(argv).toContain(`--unit=hashd-${H}`);
    expect(argv).toContain(`--socket-property=ListenStream=/run/hashd/sockets/${H}.sock`);
    expect(argv).toContain("--socket-property=Accept=no");
    expect(argv).toContain(`--setenv=HASHD_HASH=${H}`);
    const sep = argv.indexOf("--");
    expect(argv.slice(sep + 1)).toEqual([`${path}/bin/server`, "--flag"]);
  });

  test("bind-mounts the hold token file read-only into the service, and nothing without one", () => {
    const spec = {
      units: hashUnits(H, "/run/hashd/sockets"),
      storePath: path,
      manifest: parseManifest({ schema: 1, name: "backend", exec: [`${path}/bin/server`] }),
      agentEnvironment: { HASHD_HASH: H },
      bindReadOnly: [{ source: `/run/hashd/hold-tokens/${H}`, target: "/run/hashd/hold-token" }],
    };
    expect(systemdRunArgv(spec)).toContain(
      `--property=BindReadOnlyPaths=/run/hashd/hold-tokens/${H}:/run/hashd/hold-token`,
    );
    expect(argvFor({}).some((a) => a.includes("BindReadOnlyPaths"))).toBe(false);
  });

  test("raises the socket trigger limit so scale-to-zero never fails the socket", () => {
    const argv = argvFor({});
    expect(argv).toContain("--socket-property=TriggerLimitIntervalSec=1s");
    expect(argv).toContain("--socket-property=TriggerLimitBurst=10000");
    expect(argv).toContain("--property=StartLimitIntervalSec=0");
  });

  test("sandboxes the service with a dynamic user by default", () => {
    const argv = argvFor({});
    expect(argv).toContain("--property=DynamicUser=yes");
    for (const p of ["ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes"]) {
      expect(SERVICE_HARDENING).toContain(p);
      expect(argv).toContain(`--property=${p}`);
    }
    const withUser = argvFor({}, "svc");
    expect(withUser).toContain("--property=User=svc");
    expect(withUser).not.toContain("--property=DynamicUser=yes");
  });

  test("maps readiness to the service type", () => {
    expect(argvFor({ readiness: { type: "notify" } })).toContain("--property=Type=notify");
    expect(argvFor({ readiness: { type: "notify" } })).toContain("--property=NotifyAccess=all");
    expect(argvFor({ readiness: { type: "accept" } })).toContain("--property=Type=exec");
    expect(argvFor({ readiness: { type: "http", path: "/" } })).toContain("--property=Type=exec");
  });

  test("carries time-outs and environment from the manifest", () => {
    const argv = argvFor({ startTimeoutSec: 7, drainTimeoutSec: 9, environment: { A: "x y $z" } });
    expect(argv).toContain("--property=TimeoutStartSec=7s");
    expect(argv).toContain("--property=TimeoutStopSec=9s");
    expect(argv).toContain("--setenv=A=x y $z");
  });

  test("a hostile argv item stays one argv item", () => {
    const argv = argvFor({ exec: [`${path}/bin/server`, "; rm -rf / #", "ExecStartPre=/bin/sh"] });
    expect(argv.slice(argv.indexOf("--") + 1)).toEqual([
      `${path}/bin/server`,
      "; rm -rf / #",
      "ExecStartPre=/bin/sh",
    ]);
  });

  test("credentials: LoadCredential= per file on the service (the program), encrypted ones decrypted by systemd", () => {
    const argv = argvFor({ credentials: ["db-url", "stripe-key"] }, undefined, [
      { name: "db-url", path: "/run/agenix/db-url" },
      { name: "stripe-key", path: "/etc/credstore.encrypted/stripe-key.cred" },
    ]);
    expect(argv).toContain("--property=LoadCredential=db-url:/run/agenix/db-url");
    expect(argv).toContain(
      "--property=LoadCredentialEncrypted=stripe-key:/etc/credstore.encrypted/stripe-key.cred",
    );
    // the socket gets none: it runs nothing
    expect(argv.filter((a) => a.startsWith("--socket-property=") && a.includes("Credential"))).toEqual([]);
    expect(argvFor({}).some((a) => a.includes("Credential"))).toBe(false);
  });

  test("a credential path that would add unit syntax is refused, not written", () => {
    expect(() =>
      argvFor({ credentials: ["db-url"] }, undefined, [
        { name: "db-url", path: "/run/a\nExecStartPre=/bin/sh" },
      ]),
    ).toThrow(/credential/);
  });

  test("stateDirectory: the directory and the dynamic user of the service's name, not its hash", () => {
    const argv = argvFor({ stateDirectory: true });
    expect(argv).toContain("--property=DynamicUser=yes");
    expect(argv).toContain(`--property=User=${stateUser("backend")}`);
    expect(argv).toContain("--property=StateDirectory=hashd-state/backend");
    expect(argv).toContain("--property=StateDirectoryMode=0700");
    // without it: no state, and systemd's own per-unit dynamic user
    expect(argvFor({}).some((a) => a.includes("StateDirectory") || a.startsWith("--property=User="))).toBe(
      false,
    );
    // a configured user owns the state instead
    const withUser = argvFor({ stateDirectory: true }, "svc");
    expect(withUser).toContain("--property=User=svc");
    expect(withUser).toContain("--property=StateDirectory=hashd-state/backend");
    expect(withUser).not.toContain("--property=DynamicUser=yes");
  });
});
