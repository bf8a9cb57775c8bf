import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import {
  findSocketProxyd,
  installProxyHelpers,
  socketProxydCandidates,
  waitUpstreamArgv,
} from "./proxy-helpers.ts";

const NIX_SYSTEMCTL = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-systemd-257/bin/systemctl";

describe("finding systemd-socket-proxyd", () => {
  test("the override first, then NixOS's current system, Debian's, and next to systemctl", () => {
    expect(socketProxydCandidates("/opt/proxyd", NIX_SYSTEMCTL)).toEqual([
      "/opt/proxyd",
      "/run/current-system/systemd/lib/systemd/systemd-socket-proxyd",
      "/usr/lib/systemd/systemd-socket-proxyd",
      "/lib/systemd/systemd-socket-proxyd",
      "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-systemd-257/lib/systemd/systemd-socket-proxyd",
    ]);
  });

  test.each([
    ["Debian", ["/usr/lib/systemd/systemd-socket-proxyd"], "/usr/lib/systemd/systemd-socket-proxyd"],
    [
      "NixOS",
      [
        "/run/current-system/systemd/lib/systemd/systemd-socket-proxyd",
        "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-systemd-257/lib/systemd/systemd-socket-proxyd",
      ],
      "/run/current-system/systemd/lib/systemd/systemd-socket-proxyd",
    ],
    [
      "a Nix systemd elsewhere",
      ["/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-systemd-257/lib/systemd/systemd-socket-proxyd"],
      "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-systemd-257/lib/systemd/systemd-socket-proxyd",
    ],
  ])("on %s", (_where, present, expected) => {
    const exists = (p: string) => present.includes(p);
    expect(findSocketProxyd(undefined, exists, NIX_SYSTEMCTL)).toBe(expected);
  });

  test("missing everywhere: a clear error that names where it looked and the override", () => {
    expect(() => findSocketProxyd(undefined, () => false, undefined)).toThrow(
      /systemd-socket-proxyd not found.*\/usr\/lib\/systemd\/systemd-socket-proxyd.*HASHD_SOCKET_PROXYD/,
    );
  });

  test("a wrong override is an error, not a silent fall-back", () => {
    expect(() => findSocketProxyd("/nope", () => true, undefined)).not.toThrow();
    expect(() => findSocketProxyd("/nope", (p) => p !== "/nope", undefined)).toThrow(
      /HASHD_SOCKET_PROXYD=\/nope: no such file/,
    );
  });
});

describe("helper links", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test("the waiter is the compiled binary itself, or bun with the script", () => {
    expect(waitUpstreamArgv("/run/hashd/bin/hashd", "/$bunfs/root/hashd")).toEqual([
      "/run/hashd/bin/hashd",
      "wait-upstream",
    ]);
    expect(waitUpstreamArgv("/run/hashd/bin/hashd", "/src/hashd/src/cli.ts")).toEqual([
      "/run/hashd/bin/hashd",
      "/src/hashd/src/cli.ts",
      "wait-upstream",
    ]);
  });

  test("units name stable links that follow the current programs", () => {
    dir = mkdtempSync(`${tmpdir()}/hashd-bin-`);
    const first = `${dir}/proxyd-1`;
    const second = `${dir}/proxyd-2`;
    writeFileSync(first, "");
    writeFileSync(second, "");
    const helpers = installProxyHelpers(`${dir}/bin`, first);
    expect(helpers.socketProxyd).toBe(`${dir}/bin/systemd-socket-proxyd`);
    expect(helpers.waitUpstream[0]).toBe(`${dir}/bin/hashd`);
    expect(readlinkSync(`${dir}/bin/systemd-socket-proxyd`)).toBe(first);
    expect(readlinkSync(`${dir}/bin/hashd`)).toBe(process.execPath);
    installProxyHelpers(`${dir}/bin`, second); // an upgrade: the link moves, the unit's path stays
    expect(readlinkSync(`${dir}/bin/systemd-socket-proxyd`)).toBe(second);
  });
});
