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
    [["deploy", P, "--to", "root@a", "--rollout", "5,25,100"], 2, /move an --alias/],
    [
      ["deploy", P, "--to", "root@a", "--alias", "prod", "--wait"],
      2,
      /--wait waits for a --rollout or --guard/,
    ],
    [["deploy", P, "--to", "root@a", "--alias", "prod", "--rollout", "50,25,100"], 2, /must ascend/],
    [
      ["deploy", P, "--to", "root@a", "--alias", "prod", "--rollout", "--wait"],
      2,
      /--rollout takes its steps/,
    ],
    [["deploy", P, "--to", "root@a", "--alias", "prod", "--rollout", "", "--guard", "1m"], 2, /not both/],
    [["deploy", P, "--to", "root@a", "--alias", "prod", "--guard", "soon"], 2, /--guard/],
    [
      ["deploy", P, "--to", "root@a", "--alias", "prod", "--guard", "60s", "--max-error-rate", "1"],
      2,
      /--max-error-rate/,
    ],
    [
      ["deploy", P, "--to", "root@a", "--alias", "prod", "--guard", "60s", "--max-p99-ratio", "0.5"],
      2,
      /--max-p99-ratio/,
    ],
    [["alias", "set", "prod=a:50,b:50", "--guard", "60s"], 2, /--guard watches one alias set to one hash/],
    [["rollout", "start", "prod", "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6", "--steps", "5,200"], 2, /steps/],
    [["rollout", "start", "prod", "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6", "--step-time", "10"], 2, /--step-time/],
    [
      ["rollout", "start", "prod", "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6", "--min-requests", "-3"],
      2,
      /--min-requests/,
    ],
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
