import { describe, expect, test } from "bun:test";
import type { Exec, ExecOptions, ExecResult } from "../lib/exec.ts";
import { parseStorePath } from "../nix/store-path.ts";
import { deploy, type Phase } from "./deploy.ts";
import { failureOf } from "./result.ts";
import { parseTargets } from "./target.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const PATH = `/nix/store/${H}-web-1`;

interface FakeHost {
  reachable: boolean;
  store: Set<string>;
  live: Set<string>;
  /** the target refuses unsigned paths */
  refusesSignature?: boolean;
  /** activate fails with this remote error */
  activateError?: { code: string; message: string };
  /** hashd has an alias command */
  alias?: boolean;
  delayMs?: number;
}

/** ssh and nix as seen from the deploying machine: answers the argv deploy() runs. */
class FakeFleet {
  readonly calls: { argv: string[]; env?: Record<string, string | undefined> }[] = [];
  readonly hosts = new Map<string, FakeHost>();
  readonly aliases = new Map<string, string>();
  /** `hashd rollout ...` and `alias set --guard` as each host got them */
  readonly rolloutCommands: string[] = [];
  /** what `hashd rollout status` answers, poll by poll */
  rolloutStatus: string[] = [];
  local = new Set([PATH]);

  add(name: string, h: Partial<FakeHost> = {}): FakeHost {
    const host = { reachable: true, store: new Set<string>(), live: new Set<string>(), alias: true, ...h };
    this.hosts.set(name, host);
    return host;
  }

  exec: Exec = async (argv: string[], options?: ExecOptions): Promise<ExecResult> => {
    this.calls.push({ argv, ...(options?.env ? { env: options.env } : {}) });
    const ok = (stdout = ""): ExecResult => ({ code: 0, stdout, stderr: "", timedOut: false });
    const res = (code: number, stderr: string, stdout = ""): ExecResult => ({
      code,
      stdout,
      stderr,
      timedOut: false,
    });
    if (argv[0] === "nix-store") return this.local.has(argv[2] ?? "") ? ok() : res(1, "not valid");
    if (argv[0] === "nix") {
      const dest = argv[argv.indexOf("--to") + 1]?.replace("ssh-ng://", "") ?? "";
      const host = this.hosts.get(dest);
      if (!host?.reachable)
        return res(
          1,
          `error: cannot open connection to remote store 'ssh-ng://${dest}': ssh: Could not resolve hostname`,
        );
      await Bun.sleep(host.delayMs ?? 0);
      if (host.refusesSignature) {
        return res(
          1,
          `copying path '${PATH}' to 'ssh-ng://${dest}'...\nerror: cannot add path '${PATH}' because it lacks a valid signature`,
        );
      }
      host.store.add(argv[argv.length - 1] ?? "");
      return ok();
    }
    // ssh [options] -- dest 'cmd' 'args'...
    const dash = argv.indexOf("--");
    const dest = argv[dash + 1] ?? "";
    const remote = argv.slice(dash + 2).map((a) => a.slice(1, -1));
    const host = this.hosts.get(dest);
    if (!host?.reachable)
      return res(255, `ssh: Could not resolve hostname ${dest}: Name or service not known`);
    await Bun.sleep(host.delayMs ?? 0);
    if (remote[0] === "nix-store") return host.store.has(remote[2] ?? "") ? ok() : res(1, "not valid");
    const [, cmd, ...args] = remote;
    if (cmd === "activate") {
      const path = args[0] ?? "";
      if (host.activateError)
        return res(6, `hashd: ${host.activateError.message}`, JSON.stringify({ error: host.activateError }));
      if (!host.store.has(path))
        return res(3, "", JSON.stringify({ error: { code: "not_found", message: "not in store" } }));
      const existing = host.live.has(path);
      host.live.add(path);
      const deployment = { hash: H, name: "web", state: "ready", path, url: `http://${H}.test/` };
      return ok(JSON.stringify({ deployment, existing }));
    }
    if (cmd === "rollout") {
      this.rolloutCommands.push(`${dest}: ${remote.slice(1).join(" ")}`);
      if (args[0] === "start") return ok("{}");
      // status: the scripted answers, one per poll, the last one repeated
      const status = this.rolloutStatus.length > 1 ? this.rolloutStatus.shift() : this.rolloutStatus[0];
      if (status === undefined)
        return res(3, "", JSON.stringify({ error: { code: "not_found", message: "no rollout" } }));
      return ok(JSON.stringify({ rollout: { status, note: `${status} note`, to: H } }));
    }
    if (cmd === "alias") {
      if (!host.alias) return res(1, `hashd: unknown command "alias" (see hashd --help)`);
      if (args.includes("--guard")) this.rolloutCommands.push(`${dest}: ${remote.slice(1).join(" ")}`);
      const [name, hash] = (args[1] ?? "").split("=");
      this.aliases.set(`${dest}/${name}`, hash ?? "");
      return ok("{}");
    }
    return res(1, `unexpected ${remote.join(" ")}`);
  };

  ran(cmd: string, dest: string): number {
    return this.calls.filter((c) => c.argv.includes(dest) && c.argv.some((a) => a.includes(cmd))).length;
  }
}

function run(fleet: FakeFleet, to: string, extra: Partial<Parameters<typeof deploy>[0]> = {}) {
  const phases: string[] = [];
  let t = 0;
  return deploy({
    path: parseStorePath(PATH),
    targets: parseTargets(to),
    timeoutSec: 30,
    exec: fleet.exec,
    progress: { update: (host: string, phase: Phase) => phases.push(`${host}:${phase}`) },
    now: () => (t += 10),
    ...extra,
  }).then((r) => ({ ...r, phases }));
}

describe("deploy (against a fake fleet)", () => {
  test("copies to hosts that lack the closure, activates everywhere, reports per host", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a");
    fleet.add("root@b", { store: new Set([PATH]) });
    const r = await run(fleet, "root@a,root@b");
    expect(r.ok).toBe(true);
    expect(r.error).toBeUndefined();
    expect(r.url).toBe(`http://${H}.test/`);
    expect(r.hosts.map((h) => h.ok && [h.host, h.copied, h.existing])).toEqual([
      ["root@a", true, false],
      ["root@b", false, false],
    ]);
    expect(fleet.ran("copy", "ssh-ng://root@b")).toBe(0);
    const copy = fleet.calls.find((c) => c.argv.includes("copy"));
    expect(copy?.argv).toEqual([
      "nix",
      "--extra-experimental-features",
      "nix-command",
      "copy",
      "--to",
      "ssh-ng://root@a",
      PATH,
    ]);
    expect(copy?.env?.NIX_SSHOPTS).toContain("BatchMode=yes");
    expect(r.phases.filter((p) => p.startsWith("root@a"))).toEqual([
      "root@a:waiting",
      "root@a:connect",
      "root@a:copy",
      "root@a:activate",
      "root@a:ready",
    ]);
  });

  test("a live hash: one validity check and one activate per host, nothing copied", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a", { store: new Set([PATH]), live: new Set([PATH]) });
    const r = await run(fleet, "root@a");
    expect(r.hosts[0]).toMatchObject({ ok: true, existing: true, copied: false });
    expect(fleet.calls).toHaveLength(2);
  });

  test("hosts run in parallel: two slow hosts take about one host's time", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a", { delayMs: 100 });
    fleet.add("root@b", { delayMs: 100 });
    const started = performance.now();
    const r = await run(fleet, "root@a,root@b");
    expect(r.ok).toBe(true);
    expect(performance.now() - started).toBeLessThan(500); // 3 slow calls per host: 300 ms, not 600
  });

  test("an unreachable host is named at connect; the other host is deployed and stays so", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a");
    fleet.add("root@gone", { reachable: false });
    const r = await run(fleet, "root@gone,root@a");
    expect(r.ok).toBe(false);
    expect(r.hosts[0]).toMatchObject({
      host: "root@gone",
      ok: false,
      error: { code: "unavailable", stage: "connect" },
    });
    expect(r.hosts[1]).toMatchObject({ host: "root@a", ok: true });
    expect(r.error?.code).toBe("unavailable");
    expect(r.error?.message).toContain("root@gone: connect failed (unavailable): cannot reach root@gone");
    expect(r.error?.message).toContain("deployed and left as they are: root@a");
  });

  test("a refused signature is nix_failed at copy, naming the host; nothing is activated", async () => {
    const fleet = new FakeFleet();
    const a = fleet.add("root@a", { refusesSignature: true });
    const r = await run(fleet, "root@a");
    expect(r.hosts[0]).toMatchObject({ ok: false, error: { code: "nix_failed", stage: "copy" } });
    expect(r.error?.message).toContain("root@a refused");
    expect(r.error?.message).toContain("lacks a valid signature");
    expect(a.live.size).toBe(0);
    expect(fleet.ran("activate", "root@a")).toBe(0);
  });

  test("a remote activation error keeps its code across ssh (failed start, bad manifest)", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a", {
      activateError: {
        code: "systemd_failed",
        message: "hash x (web) failed: exit 3\n--- last lines ---\nboom",
      },
    });
    fleet.add("root@b", {
      activateError: { code: "bad_request", message: "invalid manifest: exec: required" },
    });
    const r = await run(fleet, "root@a,root@b");
    expect(r.hosts.map((h) => !h.ok && [h.error.code, h.error.stage])).toEqual([
      ["systemd_failed", "activate"],
      ["bad_request", "activate"],
    ]);
    // different causes: the first host in --to order gives the exit code
    expect(r.error?.code).toBe("systemd_failed");
    expect(r.error?.message).toContain("exit code from the first, root@a: systemd_failed");
    expect(r.error?.message).toContain("boom");
  });

  test("a path in neither store fails at copy with not_found", async () => {
    const fleet = new FakeFleet();
    fleet.local.clear();
    fleet.add("root@a");
    fleet.add("root@b", { store: new Set([PATH]) });
    const r = await run(fleet, "root@a,root@b");
    expect(r.hosts[0]).toMatchObject({ ok: false, error: { code: "not_found", stage: "copy" } });
    expect(r.hosts[1]).toMatchObject({ ok: true, copied: false });
    expect(fleet.calls.filter((c) => c.argv[0] === "nix-store")).toHaveLength(1);
  });

  test("--alias switches on every host once all are ready", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a");
    fleet.add("root@b");
    const r = await run(fleet, "root@a,root@b", { alias: "prod" });
    expect(r.ok).toBe(true);
    expect(r.alias).toEqual({
      name: "prod",
      switched: true,
      hosts: [
        { host: "root@a", ok: true },
        { host: "root@b", ok: true },
      ],
    });
    expect(fleet.aliases.get("root@b/prod")).toBe(H);
  });

  test("--alias is not switched anywhere when a host failed", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a");
    fleet.add("root@b", { refusesSignature: true });
    const r = await run(fleet, "root@a,root@b", { alias: "prod" });
    expect(r.alias).toEqual({ name: "prod", switched: false, skipped: "not ready on root@b", hosts: [] });
    expect(fleet.aliases.size).toBe(0);
    expect(r.error?.message).toContain("alias prod not switched: not ready on root@b");
  });

  test("--alias on a hashd without alias commands names what is missing", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a", { alias: false });
    const r = await run(fleet, "root@a", { alias: "prod" });
    expect(r.ok).toBe(false);
    expect(r.hosts[0]?.ok).toBe(true);
    expect(r.alias?.hosts[0]).toMatchObject({ ok: false, error: { code: "not_found", stage: "alias" } });
    expect(r.error?.message).toContain("the hashd on root@a has no `alias` command");
    expect(r.error?.message).toContain(`${H} is live there; alias prod was not switched`);
  });

  test("--rollout starts the rollout on every host (one cluster answers it once) and --wait follows it to its end", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a");
    fleet.add("root@b");
    fleet.rolloutStatus = ["running", "running", "done"];
    const sleeps: number[] = [];
    const r = await run(fleet, "root@a,root@b", {
      alias: "prod",
      aliasMode: { kind: "rollout", args: ["--steps", "10,100"] },
      waitRollout: { pollMs: 1000, timeoutMs: 60_000 },
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    expect(r.ok).toBe(true);
    expect(r.alias?.rollout).toEqual({ status: "done", note: "done note" });
    expect(fleet.rolloutCommands.filter((c) => c.includes("start"))).toEqual([
      `root@a: rollout start prod ${H} --steps 10,100 --json`,
      `root@b: rollout start prod ${H} --steps 10,100 --json`,
    ]);
    // only the first target is asked how it goes
    expect(fleet.rolloutCommands.filter((c) => c.includes("status"))).toEqual([
      "root@a: rollout status prod --json",
      "root@a: rollout status prod --json",
      "root@a: rollout status prod --json",
    ]);
    expect(sleeps).toEqual([1000, 1000]);
  });

  test("an aborted rollout fails the deploy with exit code 10 and its reason", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a");
    fleet.rolloutStatus = ["aborted"];
    const r = await run(fleet, "root@a", {
      alias: "prod",
      aliasMode: { kind: "guard", args: ["60s"] },
      waitRollout: { pollMs: 1000, timeoutMs: 60_000 },
      sleep: async () => {},
    });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe("rollout_aborted");
    expect(r.error?.message).toContain("was aborted: aborted note");
    expect(fleet.rolloutCommands[0]).toBe(`root@a: alias set prod=${H} --guard 60s --json`);
    expect(failureOf(r)?.exitCode).toBe(10);
  });

  test("a rollout that does not end in time is a timeout (exit 7), not a success", async () => {
    const fleet = new FakeFleet();
    fleet.add("root@a");
    fleet.rolloutStatus = ["running"];
    let clock = 0;
    const r = await run(fleet, "root@a", {
      alias: "prod",
      aliasMode: { kind: "rollout", args: [] },
      waitRollout: { pollMs: 1000, timeoutMs: 5_000 },
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
    expect(r.error?.code).toBe("timeout");
    expect(r.error?.message).toContain("did not end in time");
  });
});
