import { describe, expect, test } from "bun:test";
import type { Exec, ExecResult } from "../lib/exec.ts";
import { copyFailure, RemoteHashd, sshReason } from "./remote.ts";
import { parseTarget } from "./target.ts";

const T = parseTarget("root@web1");
const P = "/nix/store/0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6-web";
const answer =
  (r: Partial<ExecResult>): Exec =>
  async () => ({ code: 0, stdout: "", stderr: "", timedOut: false, ...r });

describe("RemoteHashd", () => {
  test("runs `hashd <args> --json` through ssh and parses the answer", async () => {
    let argv: string[] = [];
    const exec: Exec = async (a) => {
      argv = a;
      return { code: 0, stdout: '{"deployments":[]}', stderr: "", timedOut: false };
    };
    expect(await new RemoteHashd(T, exec).hashdJson(["list"])).toEqual({ deployments: [] });
    expect(argv.slice(-4)).toEqual(["root@web1", "'hashd'", "'list'", "'--json'"]);
  });

  test.each<[string, Partial<ExecResult>, string, RegExp]>([
    [
      "ssh cannot connect",
      { code: 255, stderr: "ssh: connect to host web1 port 22: Connection refused\r\n" },
      "unavailable",
      /^cannot reach root@web1: ssh: connect to host web1 port 22: Connection refused$/,
    ],
    [
      "remote error JSON",
      { code: 6, stdout: '{"error":{"code":"systemd_failed","message":"hash x failed"}}' },
      "systemd_failed",
      /^hash x failed$/,
    ],
    [
      "no hashd",
      { code: 127, stderr: "bash: line 1: hashd: command not found" },
      "not_found",
      /root@web1 has no hashd on root's PATH/,
    ],
    [
      "older hashd",
      { code: 1, stderr: 'hashd: unknown command "logs" (see hashd --help)' },
      "not_found",
      /the hashd on root@web1 has no `logs` command/,
    ],
    [
      "no answer",
      { code: 137, timedOut: true },
      "timeout",
      /root@web1: `hashd logs .*` gave no answer within 60 s/,
    ],
    [
      "anything else",
      { code: 70, stderr: "hashd: internal error: x" },
      "internal",
      /hashd logs exited 70: hashd: internal error: x/,
    ],
  ])("%s", async (_, r, code, message) => {
    const p = new RemoteHashd(T, answer(r)).hashdJson(["logs", "h"]);
    await expect(p).rejects.toMatchObject({ code });
    await p.catch((e: Error) => expect(e.message).toMatch(message));
  });

  test("isValid: 0 is present, 1 absent, 255 unreachable", async () => {
    expect(await new RemoteHashd(T, answer({ code: 0 })).isValid(P)).toBe(true);
    expect(await new RemoteHashd(T, answer({ code: 1 })).isValid(P)).toBe(false);
    await expect(new RemoteHashd(T, answer({ code: 255 })).isValid(P)).rejects.toMatchObject({
      code: "unavailable",
    });
  });
});

describe("copy failures", () => {
  const fail = (stderr: string, timedOut = false) =>
    copyFailure(T, P, { code: 1, stdout: "", stderr, timedOut }, 60_000);

  test("a refused signature (Nix's words) is nix_failed, naming the host", () => {
    const e = fail(
      `copying path '${P}' to 'ssh-ng://root@web1'...\nerror: cannot add path '${P}' because it lacks a valid signature\n`,
    );
    expect(e.code).toBe("nix_failed");
    expect(e.message).toBe(
      `root@web1 refused ${P}: it lacks a signature by a key in root@web1's trusted-public-keys (error: cannot add path '${P}' because it lacks a valid signature)`,
    );
  });

  test.each([
    "ssh: Could not resolve hostname web1: Name or service not known\nerror: cannot connect to 'root@web1'",
    "ssh: connect to host web1 port 22: Connection refused\r\nerror: failed to start SSH connection to 'root@web1'",
    "root@web1: Permission denied (publickey).\nerror: cannot open connection",
  ])("ssh failing under Nix is unavailable: %p", (stderr) => {
    expect(fail(stderr).code).toBe("unavailable");
  });

  test("other failures are nix_failed with the error line; a time-out says so", () => {
    expect(fail("error: writing to file: No space left on device").message).toBe(
      "nix copy to root@web1: error: writing to file: No space left on device",
    );
    expect(fail("", true).code).toBe("timeout");
  });

  test("sshReason skips warnings", () => {
    expect(
      sshReason(
        "Warning: Permanently added 'x' (ED25519) to the list of known hosts.\r\nssh: connect to host x port 22: No route to host\r\n",
      ),
    ).toBe("ssh: connect to host x port 22: No route to host");
  });
});
