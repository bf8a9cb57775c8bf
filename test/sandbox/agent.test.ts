/**
 * The agent against real systemd and real Nix: two sandbox hosts (a runs the agent, b is a
 * binary source reached over ssh-ng). Each test builds its closures with nix inside the host.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { getUnix, hashd, hashdJson, installAgent, unitProps, waitFor } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { serviceExpr, type TestService } from "./service-closures.ts";

interface Shown {
  hash: string;
  state: string;
  name: string;
  url: string;
  socketPath: string;
  error: string | null;
  generation: number;
}

setDefaultTimeout(120_000);

let sb: Sandbox;
let a: Host;
let b: Host;

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a", "b"] });
  a = sb.host("a");
  b = sb.host("b");
  await sb.enableRootSsh();
  await installAgent(a);
}, 180_000);

afterAll(async () => {
  await sb?.destroy();
});

async function build(host: Host, s: TestService): Promise<string> {
  return host.nixBuild(serviceExpr(s));
}

const hashOf = (path: string) => path.slice(11, 43);

async function activate(path: string, ...flags: string[]) {
  return hashdJson<{ deployment: Shown; existing: boolean }>(a, ["activate", path, ...flags]);
}

async function listDeployments(): Promise<Shown[]> {
  return (await hashdJson<{ deployments: Shown[] }>(a, ["list"])).deployments;
}

describe("agent on a real systemd + nix host", () => {
  test("the agent tells systemd it is ready (Type=notify through systemd-notify)", async () => {
    const props = await unitProps(a, "hashd.service", ["ActiveState", "StatusText", "Type"]);
    expect(props.ActiveState).toBe("active");
    expect(props.Type).toBe("notify");
    expect(props.StatusText).toContain("serving");
  });

  test("lazy activation: the socket listens, the service starts on the first connection and answers", async () => {
    const path = await build(a, { name: "lazy" });
    const hash = hashOf(path);
    const r = await activate(path, "--lazy");
    expect(r.deployment.state).toBe("idle");
    expect(r.deployment.url).toBe(`http://${hash}.test/`);
    expect((await unitProps(a, `hashd-${hash}.socket`, ["ActiveState"])).ActiveState).toBe("active");
    expect((await unitProps(a, `hashd-${hash}.service`, ["ActiveState"])).ActiveState).toBe("inactive");
    const res = await getUnix(a, r.deployment.socketPath);
    expect(res.stdout).toStartWith(`200 lazy 1 ${hash}`);
    expect((await unitProps(a, `hashd-${hash}.service`, ["ActiveState"])).ActiveState).toBe("active");
    // the agent notices the wake-up (it did not start the service itself) ...
    await waitFor("state ready after the wake-up", async () => {
      const shown = await hashdJson<{ deployment: Shown }>(a, ["show", hash]);
      return shown.deployment.state === "ready";
    });
    // ... and the exit: the socket still listens, so the hash is idle, not gone
    await a.run(["systemctl", "stop", `hashd-${hash}.service`]);
    await waitFor("state idle after the service stopped", async () => {
      const shown = await hashdJson<{ deployment: Shown }>(a, ["show", hash]);
      return shown.deployment.state === "idle";
    });
    expect((await getUnix(a, r.deployment.socketPath)).stdout).toStartWith(`200 lazy 1 ${hash}`);
  });

  test("a hash woken and stopped many times in a row keeps its socket (no start limit trips it)", async () => {
    const path = await build(a, { name: "cycler", readiness: { type: "notify" } });
    const hash = hashOf(path);
    const r = await activate(path, "--lazy");
    // systemd's default start limit is 5 starts in 10 s; a failed start limit also fails the socket
    for (let i = 0; i < 8; i++) {
      await a.run(["systemctl", "stop", `hashd-${hash}.service`]);
      expect((await getUnix(a, r.deployment.socketPath)).stdout).toStartWith(`200 cycler 1 ${hash}`);
    }
    expect((await unitProps(a, `hashd-${hash}.socket`, ["ActiveState"])).ActiveState).toBe("active");
  });

  test("a live hash whose socket disappears gets it back", async () => {
    const path = await build(a, { name: "resilient" });
    const hash = hashOf(path);
    const r = await activate(path, "--lazy");
    await a.run(["systemctl", "stop", `hashd-${hash}.socket`]);
    await waitFor("socket re-created", async () => {
      const p = await unitProps(a, `hashd-${hash}.socket`, ["ActiveState"]);
      return p.ActiveState === "active";
    });
    expect((await getUnix(a, r.deployment.socketPath)).stdout).toStartWith(`200 resilient 1 ${hash}`);
    const shown = await hashdJson<{ events: { kind: string }[] }>(a, ["show", hash]);
    expect(shown.events.map((e) => e.kind)).toContain("socket-lost");
  });

  test("hashd status shows this host's hashes and events, as text and JSON", async () => {
    await activate(await build(a, { name: "status-shown" }), "--lazy");
    const json = await hashdJson<{ self: string; hashes: { hash: string; state: string | null }[] }>(a, [
      "status",
    ]);
    expect(json.self).toBe("a");
    const listed = await listDeployments();
    const live = listed.filter((d) => d.state !== "retired").map((d) => d.hash);
    for (const h of live) expect(json.hashes.map((x) => x.hash)).toContain(h);
    const text = await hashd(a, ["status"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("HASH");
  });

  test("generated units are sandboxed: dynamic user, read-only system, private /tmp", async () => {
    const path = await build(a, { name: "sandboxed" });
    const hash = hashOf(path);
    await activate(path);
    const props = await unitProps(a, `hashd-${hash}.service`, [
      "DynamicUser",
      "ProtectSystem",
      "PrivateTmp",
      "NoNewPrivileges",
    ]);
    expect(props).toEqual({
      DynamicUser: "yes",
      ProtectSystem: "strict",
      PrivateTmp: "yes",
      NoNewPrivileges: "yes",
    });
    const res = await getUnix(a, `/run/hashd/sockets/${hash}.sock`);
    const uid = Number(/uid=(\d+)/.exec(res.stdout)?.[1]);
    expect(uid).toBeGreaterThan(0);
  });

  test.each([
    ["accept", { type: "accept" as const }],
    ["notify", { type: "notify" as const }],
    ["http", { type: "http" as const, path: "/healthz" }],
  ])("readiness by %s: activate --wait returns ready with the service running", async (kind, readiness) => {
    const path = await build(a, { name: `ready-${kind}`, mode: "slow", startDelaySec: 1, readiness });
    const hash = hashOf(path);
    const r = await activate(path, "--wait", "--timeout", "60");
    expect(r.deployment.state).toBe("ready");
    expect((await unitProps(a, `hashd-${hash}.service`, ["ActiveState"])).ActiveState).toBe("active");
    expect((await getUnix(a, r.deployment.socketPath)).stdout).toStartWith(`200 ready-${kind} 1 ${hash}`);
  });

  test("dedup: activating a live hash returns the same deployment and touches no unit", async () => {
    const path = await build(a, { name: "dedup" });
    const hash = hashOf(path);
    const first = await activate(path);
    const before = await unitProps(a, `hashd-${hash}.service`, [
      "MainPID",
      "InvocationID",
      "ActiveEnterTimestamp",
    ]);
    const again = await activate(path);
    expect(again.existing).toBe(true);
    expect(again.deployment).toEqual(first.deployment);
    const after = await unitProps(a, `hashd-${hash}.service`, [
      "MainPID",
      "InvocationID",
      "ActiveEnterTimestamp",
    ]);
    expect(after).toEqual(before);
  });

  test("a service that crashes at start fails clearly, with its journal, and can be retried", async () => {
    const path = await build(a, { name: "crasher", mode: "crash" });
    const hash = hashOf(path);
    const r = await hashd(a, ["activate", path, "--wait"]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain("failed");
    expect(r.stderr).toContain("crashing on purpose");
    const shown = await hashdJson<{ deployment: Shown }>(a, ["show", hash]);
    expect(shown.deployment.state).toBe("failed");
    // not reused: activating again retries (a new generation), and fails again the same way
    const retry = await hashd(a, ["activate", path, "--wait"]);
    expect(retry.code).toBe(6);
    expect((await hashdJson<{ deployment: Shown }>(a, ["show", hash])).deployment.generation).toBe(2);
  });

  test("bad input is refused with a clear error and changes nothing", async () => {
    const before = await listDeployments();
    const cases: [string[], number, RegExp][] = [
      [["activate", "/etc/passwd"], 2, /not a store path/],
      [["activate", "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x"], 2, /not a store path/],
      [["activate", "/nix/store/0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6-x/../../etc"], 2, /not a store path/],
      [["activate", "/nix/store/0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6-missing"], 3, /not in the local store/],
      [["show", "notahash"], 2, /not a store hash/],
      [["show", "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6"], 3, /not known/],
      [["activate"], 1, /path/i],
    ];
    for (const [args, code, message] of cases) {
      const r = await hashd(a, args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(message);
    }
    const plain = await a.nixBuild(
      `builtins.derivation { name = "not-a-service"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo > $out"]; }`,
    );
    expect((await hashd(a, ["activate", plain])).stderr).toContain("is not a service closure");
    const broken = await build(a, {
      name: "broken",
      rawManifest: JSON.stringify({ schema: 1, name: "broken", exec: ["python3"], socket: { type: "tcp" } }),
    });
    const r = await hashd(a, ["activate", broken]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("exec: exec[0] must be an absolute path");
    expect(r.stderr).toContain("socket.type");
    const notJson = await build(a, { name: "notjson", rawManifest: "{ exec: " });
    expect((await hashd(a, ["activate", notJson])).stderr).toContain("not JSON");
    expect(await listDeployments()).toEqual(before);
    const units = await a.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "hashd-*"]);
    for (const p of [plain, broken, notJson]) expect(units).not.toContain(hashOf(p));
  });

  test("unsigned closures are refused; signed ones are copied over ssh-ng and activated", async () => {
    const key = await b.generateSigningKey("b-test-1");
    await a.trustPublicKeys([key.publicKey]);
    const path = await build(b, { name: "remote" });
    const before = await listDeployments();
    const unsigned = await hashd(a, ["activate", path, "--from", "ssh-ng://root@b"]);
    expect(unsigned.code).toBe(5);
    expect(unsigned.stderr).toMatch(/signature/i);
    expect(await listDeployments()).toEqual(before);
    expect((await a.exec(["nix-store", "--check-validity", path])).code).not.toBe(0);

    await b.sign(path, key.secretKeyFile);
    const r = await activate(path, "--from", "ssh-ng://root@b", "--wait");
    expect(r.deployment.state).toBe("ready");
    expect((await getUnix(a, r.deployment.socketPath)).stdout).toStartWith(`200 remote 1 ${hashOf(path)}`);
    // a GC root keeps the closure alive
    expect(await a.run(["readlink", `/nix/var/nix/gcroots/hashd/${hashOf(path)}`])).toBe(`${path}\n`);
  });

  test("deactivate stops the pair, drops the GC root and keeps the record", async () => {
    const path = await build(a, { name: "short-lived" });
    const hash = hashOf(path);
    await activate(path, "--wait");
    const r = await hashdJson<{ deployment: Shown }>(a, ["deactivate", hash]);
    expect(r.deployment.state).toBe("retired");
    expect((await unitProps(a, `hashd-${hash}.socket`, ["LoadState"])).LoadState).toBe("not-found");
    expect((await a.exec(["test", "-e", `/nix/var/nix/gcroots/hashd/${hash}`])).code).not.toBe(0);
    expect((await a.exec(["test", "-e", `/run/hashd/sockets/${hash}.sock`])).code).not.toBe(0);
    const text = await hashd(a, ["list"]);
    expect(text.stdout).toMatch(new RegExp(`retired\\s+${hash}\\s+short-lived`));
  });

  test("kill -9 of the agent touches no service; the restarted agent re-adopts every unit", async () => {
    const path = await build(a, { name: "survivor" });
    const hash = hashOf(path);
    await activate(path, "--wait");
    const svc = await unitProps(a, `hashd-${hash}.service`, ["MainPID", "InvocationID"]);
    await a.run(["systemctl", "kill", "--signal=KILL", "hashd.service"]);
    await waitFor("agent restarted by systemd", async () => {
      const r = await hashd(a, ["list", "--json"]);
      return r.code === 0;
    });
    expect(await unitProps(a, `hashd-${hash}.service`, ["MainPID", "InvocationID"])).toEqual(svc);
    const shown = await hashdJson<{ deployment: Shown; events: { kind: string }[] }>(a, ["show", hash]);
    expect(shown.deployment.state).toBe("ready");
    expect(shown.events.map((e) => e.kind)).toContain("adopted");
  });

  test("a second `hashd serve` started by hand beside the agent refuses before it touches anything", async () => {
    const path = await build(a, { name: "bystander" });
    await activate(path, "--wait");
    const everything = async () => {
      const deployments = await listDeployments();
      const events = await Promise.all(
        deployments.map(async (d) => (await hashdJson<{ events: unknown[] }>(a, ["show", d.hash])).events),
      );
      return { deployments, events };
    };
    const before = await everything();
    const agentPid = await unitProps(a, "hashd.service", ["MainPID"]);

    const second = await hashd(a, ["serve", "--config", "/etc/hashd/config.json"], 30_000);
    expect({ code: second.code, stderr: second.stderr.trim() }).toEqual({
      code: 4,
      stderr: "hashd: another agent already serves /run/hashd/control.sock",
    });
    expect(await everything()).toEqual(before);
    expect(await unitProps(a, "hashd.service", ["MainPID"])).toEqual(agentPid);
    expect((await hashd(a, ["list"])).code).toBe(0);
  });

  test("kill -9 during an activation leaves a consistent state after restart", async () => {
    const path = await build(a, {
      name: "interrupted",
      mode: "slow",
      startDelaySec: 3,
      readiness: { type: "notify" },
    });
    const hash = hashOf(path);
    const pending = hashd(a, ["activate", path, "--wait", "--timeout", "60"]);
    await waitFor("units created", async () => {
      const p = await unitProps(a, `hashd-${hash}.service`, ["ActiveState"]);
      return p.ActiveState === "activating";
    });
    await a.run(["systemctl", "kill", "--signal=KILL", "hashd.service"]);
    expect((await pending).code).not.toBe(0);
    const d = await waitFor("ready after restart", async () => {
      const r = await hashd(a, ["show", hash, "--json"]);
      if (r.code !== 0) return undefined;
      const shown = (JSON.parse(r.stdout) as { deployment: Shown }).deployment;
      return shown.state === "ready" ? shown : undefined;
    });
    expect(d.generation).toBe(1);
    const units = await a.run([
      "systemctl",
      "list-units",
      "--all",
      "--plain",
      "--no-legend",
      `hashd-${hash}.*`,
    ]);
    expect(units.trim().split("\n")).toHaveLength(2);
    expect((await getUnix(a, d.socketPath)).stdout).toStartWith(`200 interrupted 1 ${hash}`);
  });

  test("after a reboot the agent re-creates the units of live hashes from its database", async () => {
    const before = (await listDeployments()).filter((d) => ["ready", "idle"].includes(d.state));
    expect(before.length).toBeGreaterThan(3);
    await a.reboot();
    await a.run(["systemctl", "is-active", "--wait", "hashd.service"]).catch(() => {});
    const after = await waitFor("agent up after reboot", async () => {
      const r = await hashd(a, ["list", "--json"]);
      return r.code === 0 ? (JSON.parse(r.stdout) as { deployments: Shown[] }).deployments : undefined;
    });
    for (const d of before) {
      const now = after.find((x) => x.hash === d.hash);
      expect(now && ["ready", "idle", "activating"].includes(now.state)).toBe(true);
      const res = await getUnix(a, d.socketPath);
      expect(res.stdout).toStartWith(`200 ${d.name} 1 ${d.hash}`);
    }
  });

  test("units left by a lost database are replaced when their hash is activated again", async () => {
    const path = await build(a, { name: "orphan" });
    const hash = hashOf(path);
    await activate(path, "--wait");
    // the agent loses its state directory; the hash's units run on (systemd owns them)
    await a.run(["systemctl", "stop", "hashd.service"]);
    await a.run(["sh", "-c", "rm -f /var/lib/hashd/state.sqlite*"]);
    await a.run(["systemctl", "start", "hashd.service"]);
    expect(await listDeployments()).toEqual([]);
    expect((await unitProps(a, `hashd-${hash}.socket`, ["ActiveState"])).ActiveState).toBe("active");

    // systemd-run refuses the taken names (UnitExists): the agent replaces the units, once
    const again = await activate(path, "--wait");
    expect(again.deployment.state).toBe("ready");
    expect((await getUnix(a, again.deployment.socketPath)).stdout).toStartWith(`200 orphan 1 ${hash}`);
    const journal = await a.run(["journalctl", "--no-pager", "-o", "cat", "-u", "hashd.service"]);
    expect(journal).toContain(`replacing stale units of ${hash}`);
  });
});
