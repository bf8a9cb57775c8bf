import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Subprocess } from "bun";
import {
  checkInMachineNamespace,
  checkMountinfo,
  dryRunBoot,
  type Host,
  nixEnv,
  preflight,
  reapStale,
  resolveInRoot,
  Sandbox,
  STATE_ROOT,
} from "./harness.ts";

// Boots real hosts: sized for a machine several times slower than ours (5-9 s here for the slowest).
setDefaultTimeout(120_000);

const SAFE_MOUNTINFO = [
  "100 90 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/,upperdir=/x/upper,workdir=/x/work",
  "101 100 0:51 / /tmp rw - tmpfs tmpfs rw",
  "102 100 0:52 / /run rw - tmpfs tmpfs rw",
  "103 100 0:53 / /var/tmp rw - tmpfs tmpfs rw",
].join("\n");

describe("safety checks (nothing is booted)", () => {
  test("preflight refuses to run as non-root", () => {
    expect(() => preflight({ uid: 1000 })).toThrow(/must run as root/);
  });

  test("preflight refuses when a required tool is missing", () => {
    expect(() => preflight({ extraTools: ["hashd-no-such-tool"] })).toThrow(
      /missing required tools: hashd-no-such-tool/,
    );
    expect(() => preflight()).not.toThrow();
  });

  test("checkMountinfo accepts an overlay root with private tmpfs, rejects the machine's table", () => {
    expect(checkMountinfo(SAFE_MOUNTINFO)).toEqual([]);
    const machine = checkMountinfo(fs.readFileSync("/proc/self/mountinfo", "utf8"));
    expect(machine.join("\n")).toContain("not an overlay");
    expect(machine.join("\n")).toContain("/tmp is not its own tmpfs mount");
    // a later mount on /tmp that is not tmpfs hides the tmpfs
    const shadowed = `${SAFE_MOUNTINFO}\n104 101 254:0 /tmp /tmp rw - ext4 /dev/vda rw`;
    expect(checkMountinfo(shadowed)).toEqual(["/tmp is not its own tmpfs mount"]);
  });

  test("boot.sh safety check refuses in the machine's own namespaces", async () => {
    const r = await checkInMachineNamespace();
    expect(r.code).toBe(70);
    expect(r.stdout).not.toContain("SAFE-TO-BOOT");
    expect(r.stderr).toContain("REFUSING to exec systemd");
    expect(r.stderr).toContain("not an overlay");
    expect(r.stderr).toContain("/tmp is not its own tmpfs mount");
  });

  test("boot.sh refuses when /tmp was not mounted, passes with the full setup (dry run)", async () => {
    const bad = await dryRunBoot("skip-tmp");
    expect(bad.code).toBe(70);
    expect(bad.stderr).toContain("REFUSING to exec systemd");
    expect(bad.stderr).toContain("/tmp is not its own tmpfs mount");
    expect(bad.stdout).not.toContain("SAFE-TO-BOOT");
    const good = await dryRunBoot();
    expect(good.stderr).toBe("");
    expect(good.stdout).toBe("SAFE-TO-BOOT\n");
    expect(good.code).toBe(0);
  });

  test("resolveInRoot keeps absolute symlinks inside the root", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "hashd-resolve-"));
    try {
      fs.mkdirSync(path.join(root, "etc"));
      fs.symlinkSync("/var/lib/x", path.join(root, "etc/abs"));
      fs.symlinkSync("../etc", path.join(root, "etc/rel"));
      expect(resolveInRoot(root, "/etc/abs")).toBe(`${root}/var/lib/x`);
      expect(resolveInRoot(root, "/etc/abs", false)).toBe(`${root}/etc/abs`);
      expect(resolveInRoot(root, "/etc/rel/abs/y")).toBe(`${root}/var/lib/x/y`);
      expect(resolveInRoot(root, "/../../etc/./abs")).toBe(`${root}/var/lib/x`);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test("nixEnv", () => {
    expect(nixEnv().NIX_CONFIG).toContain("experimental-features = nix-command");
    expect(nixEnv().NIX_CONFIG).toContain("substituters =");
  });
});

function ourMounts(id: string): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(`${STATE_ROOT}/${id}`) || l.includes(`hd${id}-`));
}

/** True while `pid` is a live (non-zombie) systemd process. */
function systemdAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.includes("(systemd)") && !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

function ourNetns(id: string): string[] {
  const r = Bun.spawnSync(["ip", "netns", "list"]);
  return r.stdout
    .toString()
    .split("\n")
    .filter((l) => l.startsWith(`hd${id}-`));
}

/** Polls `fn` until it returns true (every 50 ms) or throws after timeoutMs. */
async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

const HELLO_NIX = `builtins.derivation {
  name = "hashd-hello";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "export PATH=/usr/bin:/bin; mkdir -p $out/bin; printf '#!/bin/sh\\\\necho hello from nix\\\\n' > $out/bin/hello; chmod +x $out/bin/hello" ];
}`;

/** tcp connect from `from` to ip:port with a 1 s timeout; true when it connects. */
async function canConnect(from: Host, ip: string, port: number): Promise<boolean> {
  const py = `import socket,sys\ns=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)\ns.close()`;
  const r = await from.exec(["python3", "-c", py, ip, String(port)], { timeoutMs: 5000 });
  return r.code === 0;
}

test("a single host boots and is destroyed", async () => {
  const t0 = performance.now();
  const sb = await Sandbox.create({ hosts: ["solo"] });
  const ms = Math.round(performance.now() - t0);
  console.log(`[sandbox] 1 host booted in ${ms} ms`);
  try {
    expect(await sb.host("solo").run(["hostname"])).toBe("solo\n");
  } finally {
    await sb.destroy();
  }
  expect(ourNetns(sb.id)).toEqual([]);
  expect(ourMounts(sb.id)).toEqual([]);
});

describe("two hosts", () => {
  let sb: Sandbox;
  let a: Host;
  let b: Host;
  const marker = path.join("/tmp", `hashd-sandbox-marker-${randomBytes(4).toString("hex")}`);
  let bootMs = 0;
  let helloPath = "";

  beforeAll(async () => {
    fs.mkdirSync(path.join(marker, "nested"), { recursive: true });
    fs.writeFileSync(path.join(marker, "nested/file"), "keep me\n");
    const t0 = performance.now();
    sb = await Sandbox.create({ hosts: ["a", "b"] });
    bootMs = Math.round(performance.now() - t0);
    console.log(`[sandbox] 2 hosts booted in ${bootMs} ms (id ${sb.id})`);
    a = sb.host("a");
    b = sb.host("b");
  });

  afterAll(async () => {
    await sb?.destroy();
    fs.rmSync(marker, { recursive: true, force: true });
  });

  test("systemd is running on both hosts", async () => {
    for (const h of sb.hosts()) {
      const state = (await h.exec(["systemctl", "is-system-running"])).stdout.trim();
      expect(["running", "degraded"]).toContain(state);
      expect(await h.run(["hostname"])).toBe(`${h.name}\n`);
      expect(await h.run(["systemctl", "is-active", "ssh.service", "nix-daemon.socket"])).toBe(
        "active\nactive\n",
      );
      expect((await h.run(["cat", "/proc/1/comm"])).trim()).toBe("systemd");
    }
    expect(a.ip).toBe("10.231.0.10");
    expect(b.ip).toBe("10.231.0.11");
    expect(await a.run(["getent", "hosts", "b"])).toContain("10.231.0.11");
  });

  test("exec / run / spawn", async () => {
    expect(await a.exec(["cat"], { input: "in\n" })).toEqual({ code: 0, stdout: "in\n", stderr: "" });
    expect((await a.exec(["sh", "-c", 'echo "$X" >&2; exit 3'], { env: { X: "envx" } })).stderr).toBe(
      "envx\n",
    );
    expect((await a.exec(["sh", "-c", "exit 3"])).code).toBe(3);
    await expect(a.run(["sh", "-c", "echo boom >&2; exit 1"])).rejects.toThrow(/boom/);
    expect((await a.run(["pwd"], { cwd: "/etc" })).trim()).toBe("/etc");
    const t0 = Date.now();
    const slow = await a.exec(["sleep", "30"], { timeoutMs: 200 });
    expect(slow.code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    await until("sleep 30 killed", async () => (await a.exec(["pgrep", "-x", "sleep"])).code !== 0);

    const p = a.spawn(["sleep", "1000"], { stdout: "ignore", stderr: "ignore" });
    await until("spawned sleep", async () => (await a.exec(["pgrep", "-x", "sleep"])).code === 0);
    p.kill();
    await p.exited;
    await until("spawned sleep gone", async () => (await a.exec(["pgrep", "-x", "sleep"])).code !== 0);
  });

  test("writeFile/readFile/installBinary stay inside the host", async () => {
    await a.writeFile("/etc/hashd-test/conf", "hello\n");
    expect(await a.run(["cat", "/etc/hashd-test/conf"])).toBe("hello\n");
    expect(fs.existsSync("/etc/hashd-test")).toBe(false);
    // an absolute symlink inside the host resolves inside the host, not on the machine
    const target = `/var/lib/hashd-symlink-target-${sb.id}`;
    await a.run(["ln", "-sfn", target, "/tmp/hashd-link"]);
    await a.writeFile("/tmp/hashd-link", "via link\n");
    expect(await a.readFile(target)).toBe("via link\n");
    expect(fs.existsSync(target)).toBe(false);
    await a.installBinary("/bin/true", "/usr/local/bin/hashd-true");
    expect((await a.exec(["/usr/local/bin/hashd-true"])).code).toBe(0);
    expect(await a.run(["stat", "-c", "%a", "/usr/local/bin/hashd-true"])).toBe("755\n");
    expect(fs.existsSync("/usr/local/bin/hashd-true")).toBe(false);
  });

  test("socket-activated unit (systemd-run --socket-property)", async () => {
    const server = [
      "import socket",
      "s = socket.socket(fileno=3)",
      "c, _ = s.accept()",
      "c.sendall(b'hello from ' + socket.gethostname().encode() + b'\\n')",
      "c.close()",
    ].join("\n");
    await a.run([
      "systemd-run",
      "--unit=hashd-echo",
      "--socket-property=ListenStream=/run/x.sock",
      "/usr/bin/python3",
      "-c",
      server,
    ]);
    expect((await a.run(["systemctl", "is-active", "hashd-echo.socket"])).trim()).toBe("active");
    // not started until the first connection
    expect((await a.exec(["systemctl", "is-active", "hashd-echo.service"])).stdout.trim()).not.toBe("active");
    const client = [
      "import socket",
      "s = socket.socket(socket.AF_UNIX)",
      "s.connect('/run/x.sock')",
      "print(s.makefile().readline(), end='')",
    ].join("\n");
    expect(await a.run(["python3", "-c", client], { timeoutMs: 10_000 })).toBe("hello from a\n");
  });

  test("nix build inside a host", async () => {
    helloPath = await a.nixBuild(HELLO_NIX);
    expect(helloPath).toMatch(/^\/nix\/store\/[a-z0-9]{32}-hashd-hello$/);
    expect(await a.run([`${helloPath}/bin/hello`])).toBe("hello from nix\n");
    // the store is private to the host
    expect((await b.exec(["test", "-e", helloPath])).code).not.toBe(0);
    expect(fs.existsSync(helloPath)).toBe(false);
  });

  test("nix copy over ssh-ng: refused unsigned, accepted signed by a trusted key", async () => {
    await sb.enableRootSsh();
    expect(await a.run(["ssh", "-o", "BatchMode=yes", "root@b", "hostname"])).toBe("b\n");
    expect(await b.run(["ssh", "-o", "BatchMode=yes", "root@a", "hostname"])).toBe("a\n");
    if (!helloPath) helloPath = await a.nixBuild(HELLO_NIX);

    const key = await a.generateSigningKey("hashd-test-a-1");
    expect(key.publicKey).toMatch(/^hashd-test-a-1:/);
    await b.trustPublicKeys([key.publicKey]);
    expect(await b.readFile("/etc/nix/nix.conf")).toContain(`trusted-public-keys = ${key.publicKey}`);

    const unsigned = await a.exec(["nix", "copy", "--to", "ssh-ng://root@b", helloPath]);
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stderr).toMatch(/signature/);
    expect((await b.exec(["test", "-e", helloPath])).code).not.toBe(0);

    await a.sign(helloPath, key.secretKeyFile);
    await a.run(["nix", "copy", "--to", "ssh-ng://root@b", helloPath]);
    expect(await b.run([`${helloPath}/bin/hello`])).toBe("hello from nix\n");
    expect(await b.run(["nix", "path-info", "--sigs", helloPath])).toContain("hashd-test-a-1:");
  });

  test("partition: setLinkUp(false) cuts a host off the bridge", async () => {
    expect(await canConnect(a, b.ip, 22)).toBe(true);
    await b.setLinkUp(false);
    expect(await canConnect(a, b.ip, 22)).toBe(false);
    await b.setLinkUp(true);
    await until("b reachable again", () => canConnect(a, b.ip, 22));
  });

  test("reboot keeps /etc, /var/lib and /nix, wipes /run and /tmp", async () => {
    if (!helloPath) helloPath = await a.nixBuild(HELLO_NIX);
    await a.writeFile("/var/lib/hashd-test/state", "persist\n");
    await a.writeFile("/run/hashd-test", "volatile\n");
    await a.writeFile("/tmp/hashd-test", "volatile\n");
    const oldPid = a.pid;
    const t0 = performance.now();
    await a.reboot();
    console.log(`[sandbox] reboot of a took ${Math.round(performance.now() - t0)} ms`);
    expect(a.pid).not.toBe(oldPid);
    expect(systemdAlive(oldPid)).toBe(false);
    expect(await a.readFile("/var/lib/hashd-test/state")).toBe("persist\n");
    expect(await a.readFile("/etc/hashd-test/conf")).toBe("hello\n");
    expect((await a.exec(["test", "-e", "/run/hashd-test"])).code).toBe(1);
    expect((await a.exec(["test", "-e", "/tmp/hashd-test"])).code).toBe(1);
    expect(await a.run([`${helloPath}/bin/hello`])).toBe("hello from nix\n");
    expect(await a.run(["nix-store", "--verify-path", helloPath])).toBe("");
    // sshd keeps its host key, so b still knows a
    expect(await b.run(["ssh", "-o", "BatchMode=yes", "root@a", "hostname"])).toBe("a\n");
    expect(["running", "degraded"]).toContain(
      (await a.exec(["systemctl", "is-system-running"])).stdout.trim(),
    );
  });

  test("crash: host is down, network namespace stays, boot brings it back", async () => {
    await b.crash();
    expect(b.running).toBe(false);
    expect(() => b.pid).toThrow(/down/);
    expect(ourNetns(sb.id)).toContain(b.netns);
    expect(await canConnect(a, b.ip, 22)).toBe(false);
    await b.boot();
    expect(await canConnect(a, b.ip, 22)).toBe(true);
  });

  test("the machine's own /tmp is untouched", () => {
    expect(fs.readFileSync(path.join(marker, "nested/file"), "utf8")).toBe("keep me\n");
  });

  test("destroy removes everything and is idempotent", async () => {
    const pids = sb.hosts().map((h) => h.pid);
    const cgroups = sb.hosts().flatMap((h) => h._cgroupDirs());
    for (const pid of pids) expect(systemdAlive(pid)).toBe(true);
    expect(ourNetns(sb.id).length).toBe(3);
    expect(ourMounts(sb.id).length).toBeGreaterThan(0);
    await sb.destroy();
    await sb.destroy();
    for (const pid of pids) expect(systemdAlive(pid)).toBe(false);
    expect(ourNetns(sb.id)).toEqual([]);
    expect(ourMounts(sb.id)).toEqual([]);
    expect(fs.existsSync(sb.dir)).toBe(false);
    for (const c of cgroups) expect(fs.existsSync(c)).toBe(false);
    expect(fs.readFileSync(path.join(marker, "nested/file"), "utf8")).toBe("keep me\n");
  });
});

describe("clean-up when the harness process ends without destroy()", () => {
  const script = path.join(os.tmpdir(), `hashd-sandbox-child-${randomBytes(4).toString("hex")}.ts`);

  beforeAll(() => {
    fs.writeFileSync(
      script,
      `import { Sandbox } from ${JSON.stringify(path.join(import.meta.dir, "harness.ts"))};
const sb = await Sandbox.create({ hosts: ["x"] });
console.log(JSON.stringify({ id: sb.id, pid: sb.host("x").pid }));
if (process.argv[2] === "exit") {
  // exits once told to, so that the test sees its host alive first
  await Bun.stdin.stream().getReader().read();
  process.exit(0);
}
await Bun.sleep(120_000);
`,
    );
  });
  // children a failed test left running take their hosts down with them (SIGTERM runs the clean-up)
  const spawned: Subprocess[] = [];
  afterAll(async () => {
    for (const proc of spawned) if (proc.exitCode === null) proc.kill("SIGTERM");
    await Promise.all(spawned.map((proc) => proc.exited));
    fs.rmSync(script, { force: true });
  });

  async function child(mode: string) {
    const proc = Bun.spawn(["bun", script, mode], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    spawned.push(proc);
    const reader = proc.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`child ${mode} ended early: ${await new Response(proc.stderr).text()}`);
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const { id, pid } = JSON.parse(text) as { id: string; pid: number };
    expect(systemdAlive(pid)).toBe(true);
    return { proc, id, pid };
  }

  function expectGone(id: string, pid: number) {
    expect(systemdAlive(pid)).toBe(false);
    expect(ourNetns(id)).toEqual([]);
    expect(ourMounts(id)).toEqual([]);
    expect(fs.existsSync(path.join(STATE_ROOT, id))).toBe(false);
  }

  test("process.exit, SIGINT, SIGTERM run the clean-up; SIGKILL kills the hosts, reapStale the rest", async () => {
    const [exit, int, term, kill] = await Promise.all(["exit", "int", "term", "kill"].map(child));
    if (!exit || !int || !term || !kill) throw new Error("unreachable");
    exit.proc.stdin.write("exit\n");
    await exit.proc.stdin.end();
    int.proc.kill("SIGINT");
    term.proc.kill("SIGTERM");
    kill.proc.kill("SIGKILL");
    expect(await exit.proc.exited).toBe(0);
    expect(await int.proc.exited).toBe(130);
    expect(await term.proc.exited).toBe(143);
    await kill.proc.exited;
    expectGone(exit.id, exit.pid);
    expectGone(int.id, int.pid);
    expectGone(term.id, term.pid);
    // SIGKILL: no handler runs, but the parent-death signal takes the host down ...
    await until("host of the SIGKILLed harness to die", async () => !systemdAlive(kill.pid), 5000);
    // ... and reapStale() (also run by every Sandbox.create) removes namespaces and mounts.
    expect(ourNetns(kill.id).length).toBe(2);
    expect(reapStale()).toContain(kill.id);
    expectGone(kill.id, kill.pid);
  });
});
