/**
 * The proxied socket modes (manifest socket.type unix and port) against real systemd 252 and Nix:
 * the socket unit stays hashd-<hash>.socket at the same path, systemd-socket-proxyd bridges to a
 * program that listens itself, in its own unit hashd-<hash>-app.service.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { getUnix, hashd, hashdJson, installAgent, unitProps, waitFor } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { serviceExpr, type TestService } from "./service-closures.ts";

interface Shown {
  hash: string;
  state: string;
  name: string;
  socketPath: string;
  error: string | null;
  generation: number;
}

setDefaultTimeout(120_000);

let sb: Sandbox;
let a: Host;

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a"] });
  a = sb.host("a");
  await installAgent(a);
}, 180_000);

afterAll(async () => {
  await sb?.destroy();
});

const hashOf = (path: string) => path.slice(11, 43);
const sockOf = (hash: string) => `/run/hashd/sockets/${hash}.sock`;
const unix = { type: "unix" as const };
const port = (p: number) => ({ type: "port" as const, port: p });

async function build(s: TestService): Promise<{ path: string; hash: string }> {
  const path = await a.nixBuild(serviceExpr(s));
  return { path, hash: hashOf(path) };
}

async function activate(path: string, ...flags: string[]) {
  return hashdJson<{ deployment: Shown; existing: boolean }>(a, ["activate", path, ...flags]);
}

async function states(hash: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const suffix of [".socket", ".service", "-app.service"]) {
    const p = await unitProps(a, `hashd-${hash}${suffix}`, ["LoadState", "ActiveState"]);
    out[suffix] = p.LoadState === "loaded" ? (p.ActiveState ?? "?") : (p.LoadState ?? "?");
  }
  return out;
}

async function unitsOf(hash: string): Promise<string[]> {
  const out = await a.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", `hashd-${hash}*`]);
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0] ?? "")
    .sort();
}

/**
 * Opens `n` connections to a unix socket, one every `spacingMs`, each sending one GET and reading
 * the whole answer; returns each one's status line or the error it met (refused, reset, ...).
 */
async function burst(socketPath: string, n: number, spacingMs = 50): Promise<string[]> {
  const py = String.raw`
import socket, sys, threading, time
path, n, spacing = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
results = [None] * n
def one(i):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        results[i] = data.split(b"\r\n", 1)[0].decode() or "empty answer"
    except Exception as e:
        results[i] = "%s: %s" % (type(e).__name__, e)
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
    time.sleep(spacing)
for t in threads:
    t.join()
print("\n".join(results))
`;
  const out = await a.run(["/usr/bin/python3", "-c", py, socketPath, String(n), String(spacingMs / 1000)], {
    timeoutMs: 90_000,
  });
  return out.trim().split("\n");
}

describe("proxied socket modes on real systemd", () => {
  test("unix: three units, the program listens on $HASHD_UPSTREAM, requests go through the hash's socket", async () => {
    const { path, hash } = await build({ name: "px-unix", socketMode: unix });
    const r = await activate(path, "--wait");
    expect(r.deployment.state).toBe("ready");
    expect(r.deployment.socketPath).toBe(sockOf(hash));
    expect(await unitsOf(hash)).toEqual([
      `hashd-${hash}-app.service`,
      `hashd-${hash}.service`,
      `hashd-${hash}.socket`,
    ]);
    expect(await states(hash)).toEqual({
      ".socket": "active",
      ".service": "active",
      "-app.service": "active",
    });
    const proxy = await unitProps(a, `hashd-${hash}.service`, ["ExecStart", "BindsTo", "After", "Type"]);
    expect(proxy.ExecStart).toContain("systemd-socket-proxyd");
    expect(proxy.ExecStart).toContain(`/run/hashd/upstream/${hash}/upstream.sock`);
    expect(proxy.BindsTo).toBe(`hashd-${hash}-app.service`);
    // units name stable links to the helpers, so an upgrade plus a nix GC never leaves them dangling
    expect(proxy.ExecStart).toContain("path=/run/hashd/bin/systemd-socket-proxyd");
    const app = await unitProps(a, `hashd-${hash}-app.service`, ["ExecStartPost"]);
    expect(app.ExecStartPost).toContain(
      `argv[]=/run/hashd/bin/hashd wait-upstream unix:/run/hashd/upstream/${hash}/upstream.sock`,
    );
    expect(await a.run(["readlink", "/run/hashd/bin/hashd", "/run/hashd/bin/systemd-socket-proxyd"])).toBe(
      "/usr/local/bin/hashd\n/usr/lib/systemd/systemd-socket-proxyd\n",
    );
    expect(proxy.After).toContain(`hashd-${hash}-app.service`);
    expect(proxy.Type).toBe("exec");
    const res = await getUnix(a, sockOf(hash));
    expect(res.stdout).toStartWith(`200 px-unix 1 ${hash}`);
  });

  test("both units are sandboxed and share one dynamic uid, which alone reaches the upstream", async () => {
    const { path, hash } = await build({ name: "px-uid", socketMode: unix });
    await activate(path, "--wait");
    const keys = ["DynamicUser", "User", "ProtectSystem", "PrivateTmp", "NoNewPrivileges", "MainPID"];
    const proxy = await unitProps(a, `hashd-${hash}.service`, [...keys, "PrivateNetwork"]);
    const app = await unitProps(a, `hashd-${hash}-app.service`, [...keys, "PartOf"]);
    for (const u of [proxy, app]) {
      expect(u.DynamicUser).toBe("yes");
      expect(u.ProtectSystem).toBe("strict");
      expect(u.PrivateTmp).toBe("yes");
      expect(u.NoNewPrivileges).toBe("yes");
      expect(u.User).toBe(`hashd-${hash.slice(0, 25)}`);
    }
    expect(proxy.PrivateNetwork).toBe("yes");
    expect(app.PartOf).toBe(`hashd-${hash}.service`);
    const uidOf = async (pid: string) => (await a.run(["ps", "-o", "uid=", "-p", pid])).trim();
    const proxyUid = await uidOf(proxy.MainPID ?? "");
    expect(Number(proxyUid)).toBeGreaterThan(0);
    expect(await uidOf(app.MainPID ?? "")).toBe(proxyUid);
    const served = await getUnix(a, sockOf(hash));
    expect(served.stdout).toContain(`uid=${proxyUid}`);
    // the upstream directory is the app's RuntimeDirectory, 0700 and owned by that uid
    const dir = (await a.run(["stat", "-c", "%a %u", `/run/hashd/upstream/${hash}`])).trim();
    expect(dir).toBe(`700 ${proxyUid}`);
  });

  test("port: two hashes listening on the same port run side by side in their own namespaces", async () => {
    const one = await build({ name: "px-port-one", socketMode: port(8080) });
    const two = await build({ name: "px-port-two", socketMode: port(8080) });
    await Promise.all([activate(one.path, "--wait"), activate(two.path, "--wait")]);
    expect((await getUnix(a, sockOf(one.hash))).stdout).toStartWith(`200 px-port-one 1 ${one.hash}`);
    expect((await getUnix(a, sockOf(two.hash))).stdout).toStartWith(`200 px-port-two 1 ${two.hash}`);
    for (const h of [one.hash, two.hash]) {
      const app = await unitProps(a, `hashd-${h}-app.service`, ["PrivateNetwork"]);
      const proxy = await unitProps(a, `hashd-${h}.service`, ["PrivateNetwork", "JoinsNamespaceOf"]);
      expect(app.PrivateNetwork).toBe("yes");
      expect(proxy).toEqual({ PrivateNetwork: "yes", JoinsNamespaceOf: `hashd-${h}-app.service` });
    }
    // nothing listens on the host's own 8080
    expect(await a.run(["ss", "-ltnH", "sport = :8080"])).toBe("");
  });

  test.each([
    ["unix", "notify", unix, { type: "notify" as const }],
    ["unix", "http", unix, { type: "http" as const, path: "/healthz" }],
    ["port", "accept", port(9000), { type: "accept" as const }],
    ["port", "notify", port(9000), { type: "notify" as const }],
  ])(
    "readiness %s/%s: activate --wait returns once the slow program answers",
    async (mode, kind, socketMode, readiness) => {
      const { path, hash } = await build({
        name: `px-ready-${mode}-${kind}`,
        socketMode,
        readiness,
        mode: "slow",
        startDelaySec: 1,
      });
      const r = await activate(path, "--wait", "--timeout", "60");
      expect(r.deployment.state).toBe("ready");
      expect(await states(hash)).toEqual({
        ".socket": "active",
        ".service": "active",
        "-app.service": "active",
      });
      if (kind === "notify") {
        expect((await unitProps(a, `hashd-${hash}-app.service`, ["Type"])).Type).toBe("notify");
      }
      expect((await getUnix(a, sockOf(hash))).stdout).toStartWith(`200 px-ready-${mode}-${kind} 1 ${hash}`);
    },
  );

  test.each([
    ["unix", unix],
    ["port", port(8080)],
  ])(
    "%s: no connection is refused or reset while a slow program starts (lazy, then after an idle stop)",
    async (mode, socketMode) => {
      const { path, hash } = await build({
        name: `px-slow-${mode}`,
        socketMode,
        mode: "slow",
        startDelaySec: 3,
      });
      const r = await activate(path, "--lazy");
      expect(r.deployment.state).toBe("idle");
      // creating the units ran nothing: the program's unit exists, inactive, never started
      expect(await states(hash)).toEqual({
        ".socket": "active",
        ".service": "inactive",
        "-app.service": "inactive",
      });
      expect((await unitProps(a, `hashd-${hash}-app.service`, ["InvocationID"])).InvocationID).toBe("");
      const ok = "HTTP/1.1 200 OK";
      // 20 connections within 0.5 s of a 3 s start: all wait in the backlog, none is reset
      const started = Date.now();
      const first = await burst(sockOf(hash), 20, 25);
      expect(first).toEqual(Array(20).fill(ok));
      expect(Date.now() - started).toBeGreaterThan(2500);
      // the idle-stop path: stopping hashd-<hash>.service stops the program too (PartOf=)
      await a.run(["systemctl", "stop", `hashd-${hash}.service`]);
      expect(await states(hash)).toEqual({
        ".socket": "active",
        ".service": "inactive",
        "-app.service": "inactive",
      });
      const again = await burst(sockOf(hash), 20, 25);
      expect(again).toEqual(Array(20).fill(ok));
    },
  );

  test("an inactive program unit stays loaded (the proxy references it), also across daemon-reload", async () => {
    const { path, hash } = await build({ name: "px-gc", socketMode: unix });
    await activate(path, "--lazy");
    await a.run(["systemctl", "daemon-reload"]);
    await Bun.sleep(2000);
    expect(await unitsOf(hash)).toEqual([
      `hashd-${hash}-app.service`,
      `hashd-${hash}.service`,
      `hashd-${hash}.socket`,
    ]);
    expect(await states(hash)).toEqual({
      ".socket": "active",
      ".service": "inactive",
      "-app.service": "inactive",
    });
    expect((await getUnix(a, sockOf(hash))).stdout).toStartWith(`200 px-gc 1 ${hash}`);
  });

  test("a program that dies takes the proxy down; the socket listens and the next connection starts both", async () => {
    const { path, hash } = await build({ name: "px-crashy", socketMode: port(7000) });
    await activate(path, "--wait");
    const before = await unitProps(a, `hashd-${hash}-app.service`, ["MainPID"]);
    await a.run(["systemctl", "kill", "--signal=KILL", `hashd-${hash}-app.service`]);
    await waitFor("proxy stopped", async () => (await states(hash))[".service"] === "inactive");
    expect((await states(hash))[".socket"]).toBe("active");
    const res = await getUnix(a, sockOf(hash));
    expect(res.stdout).toStartWith(`200 px-crashy 1 ${hash}`);
    expect((await unitProps(a, `hashd-${hash}-app.service`, ["MainPID"])).MainPID).not.toBe(before.MainPID);
  });

  test("a program that fails at start fails the activation with its own journal", async () => {
    const { path, hash } = await build({ name: "px-fail", socketMode: unix, mode: "crash" });
    const r = await hashd(a, ["activate", path, "--wait"]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain("crashing on purpose");
    const shown = await hashdJson<{ deployment: Shown }>(a, ["show", hash]);
    expect(shown.deployment.state).toBe("failed");
    expect((await states(hash))[".socket"]).not.toBe("active");
  });

  test("without systemd-socket-proxyd a proxied activation fails clearly; fd services are unaffected", async () => {
    const dropIn = "/etc/systemd/system/hashd.service.d/no-proxyd.conf";
    const restartAgent = async () => {
      await a.run(["systemctl", "daemon-reload"]);
      await a.run(["systemctl", "restart", "hashd.service"]);
    };
    await a.writeFile(
      dropIn,
      "[Service]\nEnvironment=HASHD_SOCKET_PROXYD=/nonexistent/systemd-socket-proxyd\n",
    );
    await restartAgent();
    try {
      const { path, hash } = await build({ name: "px-no-proxyd", socketMode: unix });
      const r = await hashd(a, ["activate", path, "--wait"]);
      expect(r.code).toBe(6);
      expect(r.stderr).toContain("HASHD_SOCKET_PROXYD=/nonexistent/systemd-socket-proxyd: no such file");
      expect(await unitsOf(hash)).toEqual([]);
      const fd = await build({ name: "px-no-proxyd-fd" });
      expect((await activate(fd.path, "--wait")).deployment.state).toBe("ready");
    } finally {
      await a.run(["rm", "-f", dropIn]);
      await restartAgent();
    }
  });

  test("deactivate removes all three units and the upstream directory", async () => {
    const { path, hash } = await build({ name: "px-gone", socketMode: unix });
    await activate(path, "--wait");
    const r = await hashdJson<{ deployment: Shown }>(a, ["deactivate", hash]);
    expect(r.deployment.state).toBe("retired");
    expect(await unitsOf(hash)).toEqual([]);
    expect(await states(hash)).toEqual({
      ".socket": "not-found",
      ".service": "not-found",
      "-app.service": "not-found",
    });
    expect((await a.exec(["test", "-e", sockOf(hash)])).code).not.toBe(0);
    expect((await a.exec(["test", "-e", `/run/hashd/upstream/${hash}`])).code).not.toBe(0);
  });

  test("kill -9 of the agent touches neither unit; the restarted agent adopts them", async () => {
    const { path, hash } = await build({ name: "px-survivor", socketMode: port(8080) });
    await activate(path, "--wait");
    const keys = ["MainPID", "InvocationID"];
    const before = [
      await unitProps(a, `hashd-${hash}.service`, keys),
      await unitProps(a, `hashd-${hash}-app.service`, keys),
    ];
    await a.run(["systemctl", "kill", "--signal=KILL", "hashd.service"]);
    await waitFor("agent restarted", async () => (await hashd(a, ["list", "--json"])).code === 0);
    const after = [
      await unitProps(a, `hashd-${hash}.service`, keys),
      await unitProps(a, `hashd-${hash}-app.service`, keys),
    ];
    expect(after).toEqual(before);
    const shown = await hashdJson<{ deployment: Shown; events: { kind: string }[] }>(a, ["show", hash]);
    expect(shown.deployment.state).toBe("ready");
    expect(shown.events.map((e) => e.kind)).toContain("adopted");
    expect((await getUnix(a, sockOf(hash))).stdout).toStartWith(`200 px-survivor 1 ${hash}`);
  });

  test("after a reboot the agent re-creates the three units of ready and idle proxied hashes", async () => {
    const ready = await build({ name: "px-boot-ready", socketMode: unix });
    const idle = await build({ name: "px-boot-idle", socketMode: port(8080) });
    await activate(ready.path, "--wait");
    await activate(idle.path, "--lazy");
    await a.reboot();
    const shown = await waitFor(
      "ready hash ready again after reboot",
      async () => {
        const r = await hashd(a, ["show", ready.hash, "--json"]);
        if (r.code !== 0) return undefined;
        const d = (JSON.parse(r.stdout) as { deployment: Shown }).deployment;
        return d.state === "ready" ? d : undefined;
      },
      60_000,
    );
    expect(shown.generation).toBe(1);
    expect(await states(ready.hash)).toEqual({
      ".socket": "active",
      ".service": "active",
      "-app.service": "active",
    });
    expect((await hashdJson<{ deployment: Shown }>(a, ["show", idle.hash])).deployment.state).toBe("idle");
    expect(await states(idle.hash)).toEqual({
      ".socket": "active",
      ".service": "inactive",
      "-app.service": "inactive",
    });
    expect((await getUnix(a, sockOf(ready.hash))).stdout).toStartWith(`200 px-boot-ready 1 ${ready.hash}`);
    expect((await getUnix(a, sockOf(idle.hash))).stdout).toStartWith(`200 px-boot-idle 1 ${idle.hash}`);
    // every other proxied hash that was live before the reboot answers again too
    const list = (await hashdJson<{ deployments: Shown[] }>(a, ["list"])).deployments;
    for (const d of list.filter((x) => ["ready", "idle"].includes(x.state))) {
      expect((await getUnix(a, d.socketPath)).stdout).toStartWith(`200 ${d.name} 1 ${d.hash}`);
    }
  });
});
