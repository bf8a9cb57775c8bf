import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inertActivator } from "../../test/fakes/inert-activator.ts";
import { AliasService } from "../agent/aliases/alias-service.ts";
import { LocalAliasBackend } from "../agent/aliases/local-backend.ts";
import { controlApi } from "../agent/control/api.ts";
import { StateStore } from "../agent/state/store.ts";
import { parseManifest } from "../model/manifest.ts";
import { main } from "./main.ts";
import type { Stream, StreamEnd } from "./stream.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const P = "1c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";

const dir = mkdtempSync(join(tmpdir(), "hashd-cli-logs-"));
const socket = join(dir, "control.sock");
const missing = ["--socket", join(dir, "nothing.sock")];
let server: ReturnType<typeof Bun.serve>;
const journalCalls: unknown[] = [];

/** A real control API (its logs routes, aliases and store) on a unix socket; only journalctl is faked. */
beforeAll(() => {
  const store = new StateStore(":memory:");
  store.beginActivation(
    `/nix/store/${H}-web`,
    H,
    parseManifest({ schema: 1, name: "web", exec: ["/bin/true"] }),
    "t",
  );
  store.beginActivation(
    `/nix/store/${P}-api`,
    P,
    parseManifest({ schema: 1, name: "api", exec: ["/bin/true"], socket: { type: "port", port: 8000 } }),
    "t",
  );
  const activator = inertActivator(store);
  const aliases = new AliasService(new LocalAliasBackend("a"), store.db);
  aliases.set({ prod: H, api: P });
  const journal = {
    journal: async (unit: string | string[], lines?: number) => {
      journalCalls.push([unit, lines]);
      return "2025-01-01T00:00:00+0000 a web[7]: hello\n2025-01-01T00:00:01+0000 a web[7]: again";
    },
  };
  const app = controlApi(
    { store, activator, version: "t", journal, aliases: { aliases, isLive: () => true } },
    () => {},
  );
  server = Bun.serve({ unix: socket, fetch: app.fetch });
});

afterAll(() => {
  server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

/** main() with a fake stream runner that records what it was asked to run and ends as told. */
async function run(argv: string[], end: Partial<StreamEnd> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const streams: Stream[] = [];
  const code = await main(argv, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    stream: async (s) => {
      streams.push(s);
      return { code: 0, signal: null, stoppedBy: null, outputClosed: false, ...end };
    },
  });
  return { code, out: out.join("\n"), err: err.join("\n"), streams };
}

const local = ["--socket", socket];

describe("hashd logs: arguments are checked before the agent or a host is asked", () => {
  test.each([
    [["logs", "Prod", ...missing], 2, /"Prod" is neither a store hash .* nor an alias name/],
    [["logs", "e".repeat(32), ...missing], 2, /malformed hash "e{32}"/],
    [["logs", "-x-", ...missing], 1, /Missing required positional argument/], // an option to citty
    [["logs", "--", "-x-", ...missing], 2, /"-x-" is neither a store hash/],
    [["logs", "a.b", ...missing], 2, /neither a store hash/],
    [["logs", "prod", "-n", "0", ...missing], 2, /-n must be a whole number from 1 to 10000, not "0"/],
    [["logs", "prod", "-n", "1e3", ...missing], 2, /-n must be a whole number/],
    [["logs", "prod", "-n", "10001", "-f", ...missing], 2, /from 0 to 10000/],
    [["logs", "prod", "-f", "--json", ...missing], 2, /does not go with --json/],
    [["logs", "prod", "--host", "root@-oProxyCommand=x", ...missing], 2, /bad target/],
    [["logs", "prod", "-f", "--host", "root@a;reboot", ...missing], 2, /bad target/],
    [["logs", ...missing], 1, /Missing required positional argument/],
    [["logs", "prod", ...missing], 8, /cannot reach the hashd agent/],
    [["logs", "prod", "-f", ...missing], 8, /cannot reach the hashd agent/],
  ])("%p exits %d", async (argv, code, message) => {
    const r = await run(argv);
    expect({ code: r.code, err: r.err }).toMatchObject({ code, err: expect.stringMatching(message) });
    expect(r.streams).toEqual([]);
  });

  test("--help shows --follow and -n", async () => {
    const r = await run(["logs", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/-f, --follow/);
    expect(r.out).toMatch(/-n, --lines/);
  });
});

describe("hashd logs <hash|alias> against an agent", () => {
  test("an alias prints its hash's last lines", async () => {
    const r = await run(["logs", "prod", "-n", "2", ...local]);
    expect(r.code).toBe(0);
    expect(r.out).toBe("2025-01-01T00:00:00+0000 a web[7]: hello\n2025-01-01T00:00:01+0000 a web[7]: again");
    expect(journalCalls.at(-1)).toEqual([`hashd-${H}.service`, 2]);
  });

  test("--json names the hash, the alias and the units", async () => {
    const r = await run(["logs", "prod", "--json", ...local]);
    expect(JSON.parse(r.out)).toMatchObject({
      name: "prod",
      hash: H,
      alias: "prod",
      unit: `hashd-${H}.service`,
    });
  });

  test("an unknown alias exits 3 with its name", async () => {
    const r = await run(["logs", "staging", ...local]);
    expect(r.code).toBe(3);
    expect(r.err).toBe("hashd: no alias named staging");
    const f = await run(["logs", "staging", "-f", ...local]);
    expect(f.code).toBe(3);
    expect(f.streams).toEqual([]);
  });

  test("-f runs journalctl --follow on the hash's unit, as an argv", async () => {
    const before = journalCalls.length;
    const r = await run(["logs", "prod", "-f", "-n", "0", ...local]);
    expect(r.code).toBe(0);
    expect(r.streams).toEqual([
      {
        argv: [
          "journalctl",
          "--no-pager",
          "-o",
          "short-iso",
          "-n",
          "0",
          "--follow",
          "-u",
          `hashd-${H}.service`,
        ],
        via: { kind: "journalctl" },
      },
    ]);
    expect(journalCalls.length).toBe(before); // the agent only resolved the name
  });

  test("--follow of a proxied hash follows its program's unit and its proxy's; -n defaults to 50", async () => {
    const r = await run(["logs", "api", "--follow", ...local]);
    expect(r.streams[0]?.argv).toEqual([
      "journalctl",
      "--no-pager",
      "-o",
      "short-iso",
      "-n",
      "50",
      "--follow",
      "-u",
      `hashd-${P}-app.service`,
      "-u",
      `hashd-${P}.service`,
    ]);
  });

  test("--follow --host runs the host's hashd logs --follow over ssh, quoted, with nothing asked here", async () => {
    const r = await run(["logs", "prod", "-f", "-n", "7", "--host", "root@web1:2222", ...missing]);
    expect(r.code).toBe(0);
    const argv = r.streams[0]?.argv ?? [];
    expect(argv[0]).toBe("ssh");
    expect(argv).toContain("BatchMode=yes");
    expect(argv.slice(argv.indexOf("-p"), argv.indexOf("-p") + 2)).toEqual(["-p", "2222"]);
    expect(argv.slice(argv.indexOf("--"))).toEqual([
      "--",
      "root@web1",
      "'hashd'",
      "'logs'",
      "'prod'",
      "'--follow'",
      "'-n'",
      "'7'",
    ]);
    expect(r.streams[0]?.via).toEqual({ kind: "ssh", host: "root@web1:2222" });
  });
});

describe("how a follow's end becomes the exit code", () => {
  const follow = ["logs", "prod", "-f", ...local];
  const remote = ["logs", "prod", "-f", "--host", "root@web1"];
  test.each([
    ["Ctrl-C", follow, { code: null, signal: "SIGINT", stoppedBy: "SIGINT" }, 0, ""],
    ["SIGTERM to hashd", follow, { code: 1, stoppedBy: "SIGTERM" }, 0, ""],
    ["the reader went away (| head)", follow, { code: 1, outputClosed: true }, 0, ""],
    ["journalctl killed by SIGPIPE", follow, { code: null, signal: "SIGPIPE" }, 0, ""],
    ["journalctl failed", follow, { code: 1 }, 6, "hashd: journalctl exited 1"],
    ["ssh stopped by Ctrl-C", remote, { code: 255, stoppedBy: "SIGINT" }, 0, ""],
    [
      "lost connection",
      remote,
      { code: 255 },
      8,
      "hashd: lost the connection to root@web1, or could not reach it (ssh exited 255)",
    ],
    ["remote hashd's own code", remote, { code: 3 }, 3, ""],
  ] as const)("%s: exit %#", async (_what, argv, end, code, err) => {
    const r = await run([...argv], end as Partial<StreamEnd>);
    expect({ code: r.code, err: r.err }).toEqual({ code, err });
  });
});
