import { describe, expect, test } from "bun:test";
import { HashdError } from "../lib/errors.ts";
import { nixSshOpts, parseTarget, parseTargets, shellQuote, sshArgv } from "./target.ts";

describe("parseTarget", () => {
  test.each([
    ["root@web1", { spec: "root@web1", user: "root", host: "web1" }],
    ["web1", { spec: "web1", host: "web1" }],
    [
      "deploy_user@web-1.example.org:2222",
      {
        spec: "deploy_user@web-1.example.org:2222",
        user: "deploy_user",
        host: "web-1.example.org",
        port: 2222,
      },
    ],
    ["root@10.0.0.5", { spec: "root@10.0.0.5", user: "root", host: "10.0.0.5" }],
    ["10.0.0.5:22", { spec: "10.0.0.5:22", host: "10.0.0.5", port: 22 }],
  ])("accepts %p", (value, expected) => {
    expect(parseTarget(value)).toEqual(expected);
  });

  test.each([
    ["empty", ""],
    ["no host", "root@"],
    ["option injection", "-oProxyCommand=sh"],
    ["option after user", "root@-oProxyCommand=sh"],
    ["leading dash label", "root@-web"],
    ["trailing dash label", "root@web-"],
    ["empty label", "root@web..example"],
    ["space", "root@web 1"],
    ["shell syntax", "root@web;reboot"],
    ["quote", "root@'web'"],
    ["percent token", "root@%h"],
    ["slash", "root@web/1"],
    ["newline", "root@web\n1"],
    ["two @", "a@b@c"],
    ["bad user", "r oot@web"],
    ["user with dash first", "-l@web"],
    ["port zero", "root@web:0"],
    ["port too large", "root@web:65536"],
    ["port not a number", "root@web:ssh"],
    ["empty port", "root@web:"],
    ["ipv6 literal", "root@[::1]"],
    ["ipv6 bare", "root@::1"],
    ["label too long", `root@${"a".repeat(64)}`],
  ])("refuses %s", (_, value) => {
    expect(() => parseTarget(value)).toThrow(HashdError);
    try {
      parseTarget(value);
    } catch (e) {
      expect((e as HashdError).code).toBe("bad_request");
      expect((e as HashdError).message).toContain("bad target");
    }
  });
});

describe("parseTargets", () => {
  test("splits a comma-separated list, keeping order", () => {
    expect(parseTargets("root@a, root@b,c:2222").map((t) => t.spec)).toEqual(["root@a", "root@b", "c:2222"]);
  });
  test.each([[""], [","], ["root@a,"], ["root@a,,root@b"]])("refuses the empty entries of %p", (list) => {
    expect(() => parseTargets(list)).toThrow(/--to needs/);
  });
  test("refuses a target given twice", () => {
    expect(() => parseTargets("root@a,root@b,root@a")).toThrow(/given twice/);
  });
  test("the same host on two ports is two targets", () => {
    expect(parseTargets("root@a:22,root@a:2222")).toHaveLength(2);
  });
});

describe("ssh argv", () => {
  test("options first, then --, the destination, and each remote argument single-quoted", () => {
    const argv = sshArgv(parseTarget("root@web:2222"), ["hashd", "activate", "/nix/store/x-a?b", "it's"]);
    expect(argv).toEqual([
      "ssh",
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "ServerAliveInterval=10",
      "-o",
      "ServerAliveCountMax=3",
      "-p",
      "2222",
      "-T",
      "--",
      "root@web",
      "'hashd'",
      "'activate'",
      "'/nix/store/x-a?b'",
      `'it'\\''s'`,
    ]);
  });

  test("shellQuote round-trips through a real shell", async () => {
    for (const s of ["plain", "a b", "it's", "$(reboot)", "`x`", "a?b*", "x=y", "'"]) {
      const p = Bun.spawn(["sh", "-c", `printf %s ${shellQuote(s)}`], { stdout: "pipe" });
      expect(await new Response(p.stdout).text()).toBe(s);
    }
  });

  test("NIX_SSHOPTS keeps the user's options and adds ours", () => {
    expect(nixSshOpts(parseTarget("root@web:2222"), undefined, " -i /k ")).toBe(
      "-i /k -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=10 -o ServerAliveCountMax=3 -p 2222",
    );
  });
});
