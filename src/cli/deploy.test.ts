import { describe, expect, test } from "bun:test";
import { main } from "./main.ts";

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const P = "/nix/store/0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6-web";

describe("hashd deploy refuses bad input before anything runs", () => {
  test.each([
    [["deploy", "/nix/store/../etc/passwd", "--to", "root@a"], 2, /not a store path/],
    [["deploy", `${P}/bin/web`, "--to", "root@a"], 2, /not a store path/],
    [["deploy", "--impure", "--to", "root@a"], 1, /Missing required positional argument|--impure/],
    [["deploy", P, "--to", "root@-oProxyCommand=x"], 2, /bad target "root@-oProxyCommand=x"/],
    [["deploy", P, "--to", "root@a;reboot"], 2, /bad target/],
    [["deploy", P, "--to", "root@a,root@a"], 2, /given twice/],
    [["deploy", P, "--to", ""], 2, /--to needs/],
    [["deploy", P], 1, /Missing required argument: --to/],
    [["deploy", P, "--to", "root@a", "--timeout", "soon"], 2, /--timeout/],
    [["deploy", P, "--to", "root@a", "--alias", "Prod!"], 2, /bad alias/],
    [["logs", "not_a_hash"], 2, /is neither a store hash .* nor an alias name/],
    [["logs", "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6", "-n", "0"], 2, /-n must be/],
    [["list", "--host", "root@-x"], 2, /bad target/],
  ])("%p exits %d", async (argv, code, message) => {
    const r = await run(argv as string[]);
    expect(r.code).toBe(code as number);
    expect(r.err).toMatch(message as RegExp);
  });

  test("deploy and logs are in the usage", async () => {
    const r = await run(["--help"]);
    expect(r.out).toContain("deploy");
    expect(r.out).toContain("logs");
    expect((await run(["deploy", "--help"])).out).toContain("--to");
  });
});
