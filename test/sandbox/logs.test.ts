/**
 * `hashd logs` against a real systemd journal: a service reached by an alias, its journal followed
 * as it grows and stopped cleanly, on the host itself and from a laptop over ssh (--host), where
 * closing the connection must leave nothing running on the host.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ensureBinary, getUnix, hashd, hashdJson, installAgent, waitFor } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { serviceExpr } from "./service-closures.ts";

setDefaultTimeout(120_000);

let sb: Sandbox;
let a: Host;
let laptop: Host;
let hash: string;

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a", "laptop"] });
  [a, laptop] = [sb.host("a"), sb.host("laptop")];
  await sb.enableRootSsh();
  await Promise.all([installAgent(a), laptop.installBinary(await ensureBinary(), "/usr/local/bin/hashd")]);
  const path = await a.nixBuild(serviceExpr({ name: "chatty" }));
  hash = path.slice(11, 43);
  await hashdJson(a, ["activate", path, "--wait"]);
  await hashdJson(a, ["alias", "set", `chatty=${hash}`]);
}, 240_000);

afterAll(async () => {
  await sb?.destroy();
});

/** Makes the service write "said: <text>" to its journal (a request to its /say/ path). */
async function say(text: string): Promise<void> {
  const r = await getUnix(a, `/run/hashd/sockets/${hash}.sock`, `/say/${text}`);
  expect(r.stdout).toStartWith("200 chatty");
}

/** `hashd logs <args>` left running on a host, its output collected as it comes. */
function follow(h: Host, args: string[]) {
  const proc = h.spawn(["/usr/local/bin/hashd", "logs", ...args], { stdout: "pipe", stderr: "pipe" });
  let out = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>)
      out += decoder.decode(chunk, { stream: true });
  })();
  const stderr = new Response(proc.stderr as ReadableStream<Uint8Array>).text();
  return {
    proc,
    shows: (text: string) =>
      waitFor(`${JSON.stringify(text)} in the output of hashd logs ${args.join(" ")}`, async () =>
        out.includes(text),
      ),
    /** how it exited, or "still running" after 10 s (then it is killed) */
    ended: async () => {
      const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "still running" as const)]);
      if (code === "still running") {
        proc.kill("SIGKILL"); // its journalctl may live on: the check for leftovers names it
        return { code, stderr: "" };
      }
      await reading;
      return { code, stderr: await stderr };
    },
  };
}

/** The processes of a follow on a host: hashd logs, journalctl --follow, ssh ... --follow. */
async function followers(h: Host): Promise<string[]> {
  const ps = await h.run(["ps", "-eo", "pid=,args="]);
  return ps.split("\n").filter((l) => /hashd logs|journalctl .*--follow|ssh .*--follow/.test(l));
}

async function noFollowersLeft(h: Host): Promise<void> {
  await waitFor(`no follow left on ${h.name}`, async () => (await followers(h)).length === 0, 10_000).catch(
    async (e) => {
      throw new Error(`${(e as Error).message}: ${(await followers(h)).join("; ")}`);
    },
  );
}

describe("hashd logs on a real journal", () => {
  test("by alias: the last lines, as text and JSON, here and over ssh", async () => {
    const token = `t${Date.now()}`;
    await say(`hello-${token}`);
    const text = await waitFor("the line in hashd logs chatty", async () => {
      const r = await hashd(a, ["logs", "chatty", "-n", "3"]);
      return r.code === 0 && r.stdout.includes(`said: hello-${token}`) ? r.stdout : undefined;
    });
    // short-iso, as journalctl prints it: time, host, program[pid]: message
    expect(text).toMatch(
      new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+ a \\S+\\[\\d+\\]: said: hello-${token}$`, "m"),
    );
    const remote = await hashdJson<{ hash: string; alias: string; unit: string; lines: string[] }>(laptop, [
      "logs",
      "chatty",
      "--host",
      "root@a",
    ]);
    expect(remote).toMatchObject({ hash, alias: "chatty", unit: `hashd-${hash}.service` });
    expect(remote.lines.join("\n")).toContain(`said: hello-${token}`);
  });

  test("--follow of an alias shows a line written after it started; SIGTERM stops it and journalctl", async () => {
    const token = `t${Date.now()}`;
    await say(`before-${token}`);
    const f = follow(a, ["chatty", "--follow", "-n", "5"]);
    await f.shows(`said: before-${token}`); // journalctl is running: what follows is new
    await say(`after-${token}`);
    await f.shows(`said: after-${token}`);
    expect(
      (await followers(a)).some((l) =>
        l.includes(`journalctl --no-pager -o short-iso -n 5 --follow -u hashd-${hash}.service`),
      ),
    ).toBe(true);
    f.proc.kill("SIGTERM"); // to hashd only: it stops journalctl itself
    expect(await f.ended()).toEqual({ code: 0, stderr: "" });
    await noFollowersLeft(a);
  });

  test("-f --host over ssh: Ctrl-C ends it, and the closed connection ends the follow on the host", async () => {
    const token = `t${Date.now()}`;
    await say(`before-${token}`);
    const f = follow(laptop, ["chatty", "-f", "-n", "5", "--host", "root@a"]);
    await f.shows(`said: before-${token}`);
    await say(`remote-${token}`);
    await f.shows(`said: remote-${token}`);
    expect((await followers(a)).length).toBeGreaterThan(0); // hashd logs and journalctl on a
    f.proc.kill("SIGINT"); // Ctrl-C, as the terminal delivers it to hashd
    expect(await f.ended()).toEqual({ code: 0, stderr: "" });
    await noFollowersLeft(laptop);
    await noFollowersLeft(a);
  });

  test("-f --host: a connection lost under it ends the follow there and exits 8 here", async () => {
    const f = follow(laptop, ["chatty", "-f", "-n", "1", "--host", "root@a"]);
    await waitFor("the remote follow", async () =>
      (await followers(a)).some((l) => l.includes("journalctl")),
    );
    // the connection goes away without hashd being asked to stop: its ssh dies
    const ssh = (await followers(laptop)).find((l) => /^\s*\d+ ssh /.test(l));
    expect(ssh).toBeDefined();
    await laptop.run(["kill", "-KILL", String(Number.parseInt(ssh ?? "", 10))]);
    const end = await f.ended();
    expect(end.code).toBe(8);
    expect(end.stderr).toContain("hashd: lost the connection to root@a, or could not reach it");
    await noFollowersLeft(a);
  });

  test("-f in a pipeline: the reader going away ends it with exit 0 (hashd logs -f | head -n 1)", async () => {
    const r = await a.exec(
      [
        "bash",
        "-c",
        `hashd logs chatty -f -n 1 | head -n 1 >/dev/null; echo "hashd exited \${PIPESTATUS[0]}"`,
      ],
      { timeoutMs: 30_000 },
    );
    expect(r).toEqual({ code: 0, stdout: "hashd exited 0\n", stderr: "" });
    await noFollowersLeft(a);
  });

  test("an unknown alias exits 3 and a malformed name 2, here and over ssh, following or not", async () => {
    const cases: [Host, string[], number, string][] = [
      [a, ["logs", "nope"], 3, "hashd: no alias named nope"],
      [a, ["logs", "nope", "-f"], 3, "hashd: no alias named nope"],
      [laptop, ["logs", "nope", "--host", "root@a"], 3, "hashd: no alias named nope"],
      [laptop, ["logs", "nope", "-f", "--host", "root@a"], 3, "hashd: no alias named nope"],
      [a, ["logs", "Nope", "-f"], 2, "is neither a store hash"],
      [laptop, ["logs", "e".repeat(32), "-f", "--host", "root@a"], 2, "malformed hash"],
    ];
    for (const [h, args, code, message] of cases) {
      const r = await hashd(h, args, 30_000);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toContain(message);
    }
    await noFollowersLeft(a);
  });
});
