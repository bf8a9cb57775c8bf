import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { Exec } from "../lib/exec.ts";
import { withSshMux } from "./ssh-mux.ts";
import { parseTarget, parseTargets, sshArgv } from "./target.ts";

test("ssh calls share one connection per host; the masters are told to exit and the directory goes", async () => {
  const calls: string[][] = [];
  const exec: Exec = async (argv) => {
    calls.push(argv);
    return { code: 0, stdout: "", stderr: "", timedOut: false };
  };
  let dir = "";
  const result = await withSshMux(parseTargets("root@a,root@b:2222"), exec, async (ssh) => {
    dir = ssh.controlDir ?? "";
    expect(existsSync(dir)).toBe(true);
    const argv = sshArgv(parseTarget("root@a"), ["true"], ssh);
    expect(argv).toContain(`ControlPath=${dir}/%C`);
    expect(argv).toContain("ControlMaster=auto");
    return 42;
  });
  expect(result).toBe(42);
  expect(existsSync(dir)).toBe(false);
  expect(calls.map((c) => c.slice(-4))).toEqual([
    ["-O", "exit", "--", "root@a"],
    ["-O", "exit", "--", "root@b"],
  ]);
  expect(calls[1]?.join(" ")).toContain("-p 2222");
});
