/**
 * Secrets as systemd credentials, and state shared by the versions of a service (issue 15), on one
 * sandbox host with real systemd 252 and the compiled agent:
 * - a service reads the credentials its manifest names, from files the host maps (plain, and one
 *   made by `systemd-creds encrypt`), in fd and unix mode; another hash cannot read them; their
 *   values are in no store path, not in the agent's SQLite files, its status, events or journal;
 * - a manifest naming a credential whose file is missing, or that the host does not map, is
 *   refused with exit code 3 and leaves no unit, no GC root and no row;
 * - `hashd restart` (by alias) makes the program read a rotated file, with no failed request under
 *   steady load;
 * - v1 (fd) and v2 (unix, behind systemd-socket-proxyd) of one service share its state directory
 *   and its uid while both run, after v1 retires, and a v3 started after both stopped owns it all.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { hashd, hashdJson, installAgent, waitFor } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { LOAD_GENERATOR_TS, type LoadSummary } from "./load-generator.ts";
import { serviceExpr, type TestService } from "./service-closures.ts";

setDefaultTimeout(180_000);

let sb: Sandbox;
let a: Host;
const hashOf = (p: string) => p.slice(11, 43);
const secret = (what: string) => `${what}-${randomBytes(12).toString("hex")}`;

/** Values that must never leave their files and the program. */
const DB_URL_1 = secret("db-url-one");
const DB_URL_2 = secret("db-url-two");
const API_KEY = secret("api-key-encrypted");
const paths: Record<string, string> = {};

const SERVICES: Record<string, TestService> = {
  cred: { name: "cred-api", credentials: ["db-url", "api-key"], readiness: { type: "notify" } },
  credUnix: { name: "cred-api", version: "unix", credentials: ["db-url"], socketMode: { type: "unix" } },
  other: { name: "other" },
  missing: { name: "missing-file", credentials: ["db-url"] },
  unmapped: { name: "unmapped", credentials: ["db-url"] },
  state1: { name: "state-api", version: "1", stateDirectory: true },
  state2: { name: "state-api", version: "2", stateDirectory: true, socketMode: { type: "unix" } },
  state3: { name: "state-api", version: "3", stateDirectory: true },
};

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a"] });
  a = sb.host("a");
  await a.run(["install", "-d", "-m", "700", "/run/keys"]);
  await a.writeFile("/run/keys/db-url", DB_URL_1, 0o400);
  // an encrypted credential, with the host key (no TPM here): systemd-creds setup makes it
  await a.run([
    "sh",
    "-c",
    `printf %s '${API_KEY}' | systemd-creds encrypt --name=api-key - /run/keys/api-key.cred`,
  ]);
  await installAgent(a, {
    config: {
      zone: "test",
      quietSec: 1,
      credentials: {
        "cred-api": { "db-url": "/run/keys/db-url", "api-key": "/run/keys/api-key.cred" },
        "missing-file": { "db-url": "/run/keys/not-there" },
      },
    },
  });
  for (const [key, s] of Object.entries(SERVICES)) paths[key] = await a.nixBuild(serviceExpr(s));
}, 300_000);

afterAll(async () => {
  await sb?.destroy();
});

/** GET through the host's ingress, by hash or alias. */
async function get(name: string, path: string): Promise<string> {
  const r = await a.exec([
    "curl",
    "-sS",
    "--max-time",
    "20",
    "-H",
    `Host: ${name}.test`,
    `http://127.0.0.1:8480${path}`,
  ]);
  if (r.code !== 0) throw new Error(`GET ${name}${path}: ${r.stderr}`);
  return r.stdout;
}

const activate = (key: string) =>
  hashdJson<{ deployment: { state: string } }>(a, ["activate", paths[key] as string]);

describe("credentials", () => {
  test("a service reads the credentials its manifest names: a plain file and an encrypted one", async () => {
    await activate("cred");
    const h = hashOf(paths.cred as string);
    expect(await get(h, "/cred/db-url")).toBe(DB_URL_1);
    expect(await get(h, "/cred/api-key")).toBe(API_KEY);
    // (systemctl show prints these properties as "[unprintable]" on 252; the unit file has them)
    const unit = await a.run(["systemctl", "cat", `hashd-${h}.service`]);
    expect(unit).toContain("LoadCredential=db-url:/run/keys/db-url");
    expect(unit).toContain("LoadCredentialEncrypted=api-key:/run/keys/api-key.cred");
  });

  test("unix mode: the program's unit gets them, not the proxy", async () => {
    await activate("credUnix");
    const h = hashOf(paths.credUnix as string);
    expect(await get(h, "/cred/db-url")).toBe(DB_URL_1);
    const app = await a.run(["systemctl", "cat", `hashd-${h}-app.service`]);
    const proxy = await a.run(["systemctl", "cat", `hashd-${h}.service`]);
    expect(app).toContain("LoadCredential=db-url:/run/keys/db-url");
    expect(proxy).not.toContain("Credential");
  });

  test("another hash cannot read them: not the unit's copy, not the source file", async () => {
    await activate("other");
    const other = hashOf(paths.other as string);
    const cred = hashOf(paths.cred as string);
    const copy = await get(other, `/read/run/credentials/hashd-${cred}.service/db-url`);
    expect(copy).toStartWith("error: ");
    expect(await get(other, "/read/run/keys/db-url")).toStartWith("error: PermissionError");
    expect(await get(other, "/read/run/keys/api-key.cred")).toStartWith("error: PermissionError");
    expect(await get(other, "/cred/db-url")).toStartWith("error: no credential");
    // nor through the program's own view of the file system (another uid: no ptrace access)
    const pid = (
      await a.run(["systemctl", "show", "-p", "MainPID", "--value", `hashd-${cred}.service`])
    ).trim();
    expect(
      await get(other, `/read/proc/${pid}/root/run/credentials/hashd-${cred}.service/db-url`),
    ).toStartWith("error: PermissionError");
  });

  test("a missing file, or a credential the host does not map: exit 3, nothing left behind", async () => {
    for (const [key, words] of [
      ["missing", ["missing-file", "db-url", "/run/keys/not-there", "does not exist"]],
      ["unmapped", ["unmapped", "db-url", "credentials.unmapped.db-url"]],
    ] as const) {
      const h = hashOf(paths[key] as string);
      const r = await hashd(a, ["activate", paths[key] as string]);
      expect({ key, code: r.code }).toEqual({ key, code: 3 });
      for (const w of words) expect(r.stderr).toContain(w);
      const units = await a.run(["systemctl", "list-units", "--all", "--no-legend", `hashd-${h}*`]);
      expect(units.trim()).toBe("");
      expect((await a.exec(["test", "-e", `/nix/var/nix/gcroots/hashd/${h}`])).code).toBe(1);
      expect((await hashd(a, ["show", h])).code).toBe(3);
      const json = await hashd(a, ["activate", paths[key] as string, "--json"]);
      expect(JSON.parse(json.stdout).error.code).toBe("missing_credential");
    }
  });

  test("hashd restart: the rotated value is read, the socket stays, no request fails under load", async () => {
    const h = hashOf(paths.cred as string);
    await hashdJson(a, ["alias", "set", `creds=${h}`]);
    await waitFor("the alias routes", async () => (await get("creds", "/cred/db-url")) === DB_URL_1);
    const pidBefore = (
      await a.run(["systemctl", "show", "-p", "MainPID", "--value", `hashd-${h}.service`])
    ).trim();
    const socketSince = async () =>
      (
        await a.run([
          "systemctl",
          "show",
          "-p",
          "ActiveEnterTimestampMonotonic",
          "--value",
          `hashd-${h}.socket`,
        ])
      ).trim();
    const listeningSince = await socketSince();
    await a.writeFile("/root/load.ts", LOAD_GENERATOR_TS);
    const load = a.spawn(
      [
        "/usr/bin/bun",
        "/root/load.ts",
        "http://127.0.0.1:8480",
        "creds.test",
        "4",
        "/root/stop-load",
        "/cred/db-url",
      ],
      { stdout: "pipe" },
    );
    // POSTs too: the ingress retries no POST, so one the old program was killed under would fail
    // (a bare `systemctl restart` under such load failed some, seen on 252)
    const posts = a.spawn(
      [
        "/usr/bin/bun",
        "/root/load.ts",
        "http://127.0.0.1:8480",
        "creds.test",
        "2",
        "/root/stop-load",
        "/",
        "POST",
      ],
      { stdout: "pipe" },
    );
    await Bun.sleep(1500);
    await a.writeFile("/run/keys/db-url", DB_URL_2, 0o400);
    // rotated on disk, not yet in the program: it read its secrets at start
    expect(await get("creds", "/cred/db-url")).toBe(DB_URL_1);
    const restarted = await hashdJson<{ restarted: boolean; hash: string; alias: string; drained: number }>(
      a,
      ["restart", "creds"],
    );
    expect(restarted).toMatchObject({ restarted: true, hash: h, alias: "creds" });
    await Bun.sleep(1500);
    await a.writeFile("/root/stop-load", "");
    const summary = JSON.parse(await new Response(load.stdout as ReadableStream).text()) as LoadSummary;
    const posted = JSON.parse(await new Response(posts.stdout as ReadableStream).text()) as LoadSummary;
    console.log(
      `restart under load: ${summary.ok} ok, ${summary.failed} failed, drained ${restarted.drained}; ` +
        `old value ${summary.tally[DB_URL_1] ?? 0}, new ${summary.tally[DB_URL_2] ?? 0}`,
    );
    console.log(`POSTs meanwhile: ${posted.ok} ok, ${posted.failed} failed`);
    expect(summary.errors).toEqual([]);
    expect(summary.failed).toBe(0);
    expect(posted.errors).toEqual([]);
    expect(posted.ok).toBeGreaterThan(0);
    expect(summary.tally[DB_URL_1]).toBeGreaterThan(0);
    expect(summary.tally[DB_URL_2]).toBeGreaterThan(0);
    expect(Object.keys(summary.tally).sort()).toEqual([DB_URL_1, DB_URL_2].sort());
    expect(await get(h, "/cred/db-url")).toBe(DB_URL_2);
    const pidAfter = (
      await a.run(["systemctl", "show", "-p", "MainPID", "--value", `hashd-${h}.service`])
    ).trim();
    expect(pidAfter).not.toBe(pidBefore);
    // the same socket throughout: it never stopped listening
    expect(await socketSince()).toBe(listeningSince);
    const events = (await hashdJson<{ events: { kind: string; message: string }[] }>(a, ["show", h])).events;
    expect(events.some((e) => e.kind === "restart" && e.message.includes("restarted by hand"))).toBe(true);
  });

  test("unix mode restarts too (the program's unit with its proxy)", async () => {
    const h = hashOf(paths.credUnix as string);
    expect(await get(h, "/cred/db-url")).toBe(DB_URL_1);
    const r = await hashdJson<{ restarted: boolean }>(a, ["restart", h]);
    expect(r.restarted).toBe(true);
    expect(await get(h, "/cred/db-url")).toBe(DB_URL_2);
  });

  test("a restart with the file gone is refused with exit 3 and stops nothing", async () => {
    const h = hashOf(paths.cred as string);
    const pid = (await a.run(["systemctl", "show", "-p", "MainPID", "--value", `hashd-${h}.service`])).trim();
    await a.run(["mv", "/run/keys/db-url", "/run/keys/db-url.away"]);
    try {
      const r = await hashd(a, ["restart", h]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain("/run/keys/db-url");
      expect(
        (await a.run(["systemctl", "show", "-p", "MainPID", "--value", `hashd-${h}.service`])).trim(),
      ).toBe(pid);
      expect(await get(h, "/cred/db-url")).toBe(DB_URL_2);
    } finally {
      await a.run(["mv", "/run/keys/db-url.away", "/run/keys/db-url"]);
    }
  });

  test("no value is in the store, the agent's database, its status, events or journal", async () => {
    const values = [DB_URL_1, DB_URL_2, API_KEY];
    // grep -F exits 1 when nothing matches
    const grep = async (args: string[]) =>
      (await a.exec(["grep", "-rlaF", ...values.flatMap((v) => ["-e", v]), ...args])).code;
    expect(await grep(["/nix/store"])).toBe(1);
    const dbFiles = (await a.run(["sh", "-c", "ls /var/lib/hashd/state.sqlite*"])).trim().split("\n");
    expect(dbFiles).toContain("/var/lib/hashd/state.sqlite");
    expect(await grep(dbFiles)).toBe(1);
    const status = await a.run(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:8481/api/status"]);
    const cli = await a.run(["/usr/local/bin/hashd", "status", "--json"]);
    const events = await a.run(["/usr/local/bin/hashd", "show", hashOf(paths.cred as string), "--json"]);
    const journal = await a.run(["journalctl", "--no-pager", "-u", "hashd.service"]);
    expect(status).toContain("cred-api");
    for (const text of [status, cli, events, journal]) for (const v of values) expect(text).not.toContain(v);
  });
});

/** The owner and mode of the state directory and its files, as the program sees them. */
async function ls(name: string): Promise<{ me: number; lines: string[] }> {
  const text = await get(name, "/state/ls");
  const me = Number(/^me uid=(\d+)/.exec(text)?.[1]);
  if (!me) throw new Error(`no state listing: ${text}`);
  return { me, lines: text.split("\n").slice(1) };
}

/** Every entry owned by `uid`, the directory 0700 and the files 0600. */
function ownedBy(lines: string[], uid: number): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const l of lines) expect(l).toContain(`uid=${uid} gid=${uid}`);
  expect(lines[0]).toContain("mode=700");
  for (const l of lines.slice(1)) expect(l).toContain("mode=600");
}

describe("state by service name, shared across versions", () => {
  test("v1 (fd) and v2 (unix) run at once on one directory, as one uid", async () => {
    const [v1, v2] = [hashOf(paths.state1 as string), hashOf(paths.state2 as string)];
    await activate("state1");
    await activate("state2");
    expect(await get(v1, "/state/write/from-v1/one")).toStartWith("wrote from-v1");
    expect(await get(v2, "/state/read/from-v1")).toBe("one");
    expect(await get(v2, "/state/write/from-v2/two")).toStartWith("wrote from-v2");
    expect(await get(v1, "/state/read/from-v2")).toBe("two");
    const [l1, l2] = [await ls(v1), await ls(v2)];
    expect(l1.me).toBe(l2.me);
    ownedBy(l1.lines, l1.me);
    expect((await a.run(["readlink", "/var/lib/hashd-state/state-api"])).trim()).toBe(
      "../private/hashd-state/state-api",
    );
    // and the proxy of v2 runs as that user too (it reaches the program's 0700 runtime directory)
    const users = await a.run([
      "systemctl",
      "show",
      "-p",
      "User",
      `hashd-${v1}.service`,
      `hashd-${v2}.service`,
      `hashd-${v2}-app.service`,
    ]);
    expect(new Set(users.trim().split(/\n+/)).size).toBe(1);
    expect(users).toContain("User=hashd-state-api-");
  });

  test("after v1 retires, v2 still reads and writes it, as the same owner", async () => {
    const [v1, v2] = [hashOf(paths.state1 as string), hashOf(paths.state2 as string)];
    const before = (await ls(v2)).me;
    await hashdJson(a, ["alias", "set", `stateprod=${v1}`]);
    await waitFor("v1 wanted", async () =>
      (await hashdJson<{ events: { kind: string }[] }>(a, ["show", v1])).events.some(
        (e) => e.kind === "wanted",
      ),
    );
    await hashdJson(a, ["alias", "set", `stateprod=${v2}`]);
    await waitFor(
      "v1 retired",
      async () =>
        (await hashdJson<{ deployment: { state: string } }>(a, ["show", v1])).deployment.state === "retired",
      60_000,
    );
    expect(await get(v2, "/state/read/from-v1")).toBe("one");
    expect(await get(v2, "/state/write/after-v1/three")).toStartWith("wrote after-v1");
    const l = await ls(v2);
    expect(l.me).toBe(before);
    ownedBy(l.lines, l.me);
  });

  test("after both stopped (v2 deactivated), a new version owns all of it and reads what they wrote", async () => {
    const [v2, v3] = [hashOf(paths.state2 as string), hashOf(paths.state3 as string)];
    const user = (
      await a.run(["systemctl", "show", "-p", "User", "--value", `hashd-${v2}-app.service`])
    ).trim();
    expect(user).toStartWith("hashd-state-api-");
    expect((await a.exec(["getent", "passwd", user])).code).toBe(0);
    await hashdJson(a, ["alias", "rm", "stateprod"]);
    await hashdJson(a, ["deactivate", v2]);
    // nothing of the service runs: its dynamic user is released (nss-systemd knows it no more)
    expect((await a.exec(["getent", "passwd", user])).code).toBe(2);
    await activate("state3");
    expect(await get(v3, "/state/read/from-v1")).toBe("one");
    expect(await get(v3, "/state/read/from-v2")).toBe("two");
    expect(await get(v3, "/state/read/after-v1")).toBe("three");
    expect(await get(v3, "/state/write/from-v3/four")).toStartWith("wrote from-v3");
    const l = await ls(v3);
    ownedBy(l.lines, l.me);
    expect(l.lines).toHaveLength(5); // the directory and four files
  });
});
