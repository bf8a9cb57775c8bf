/**
 * `hashd deploy` end to end over real SSH: a "laptop" host builds and signs closures and deploys
 * them to two targets running the agent (root keys in authorized_keys, the laptop's signing key in
 * their trusted-public-keys). Figures (cold deploy vs dedup) are printed.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { DeployResult } from "../../src/deploy/result.ts";
import { ensureBinary, getUnix, hashd, hashdJson, installAgent, unitProps } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { serviceExpr, type TestService } from "./service-closures.ts";

setDefaultTimeout(120_000);

let sb: Sandbox;
let laptop: Host;
let b: Host;
let c: Host;
let secretKeyFile: string;

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["laptop", "b", "c"] });
  [laptop, b, c] = [sb.host("laptop"), sb.host("b"), sb.host("c")];
  await sb.enableRootSsh();
  const key = await laptop.generateSigningKey("laptop-1");
  secretKeyFile = key.secretKeyFile;
  await Promise.all([
    laptop.installBinary(await ensureBinary(), "/usr/local/bin/hashd"),
    ...[b, c].map(async (h) => {
      await installAgent(h);
      await h.trustPublicKeys([key.publicKey]);
    }),
  ]);
}, 240_000);

afterAll(async () => {
  await sb?.destroy();
});

const hashOf = (path: string) => path.slice(11, 43);

async function buildSigned(s: TestService, sign = true): Promise<string> {
  const path = await laptop.nixBuild(serviceExpr(s));
  if (sign) await laptop.sign(path, secretKeyFile);
  return path;
}

/** `hashd deploy` on the laptop; stdout is a pipe there, so the result is JSON without --json. */
async function deploy(args: string[]) {
  const started = performance.now();
  const r = await hashd(laptop, ["deploy", ...args], 180_000);
  const ms = performance.now() - started;
  let result: DeployResult | undefined;
  try {
    result = JSON.parse(r.stdout) as DeployResult;
  } catch {
    throw new Error(`hashd deploy printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { ...r, result, ms };
}

async function listHashes(h: Host): Promise<string[]> {
  const r = await hashdJson<{ deployments: { hash: string; state: string }[] }>(h, ["list"]);
  return r.deployments.filter((d) => d.state !== "retired").map((d) => d.hash);
}

const inStore = async (h: Host, path: string) =>
  (await h.exec(["nix-store", "--check-validity", path])).code === 0;

describe("hashd deploy over SSH", () => {
  let web: string;
  let crasher: string;

  test("a signed closure is copied to both targets, ready on both, and answers on each", async () => {
    web = await buildSigned({ name: "web", readiness: { type: "notify" } });
    const r = await deploy([web, "--to", "root@b,root@c"]);
    const perHost = r.result?.hosts.map((h) => `${h.host} ${h.durationMs} ms`).join(", ");
    console.log(
      `cold deploy to 2 hosts: ${r.ms.toFixed(0)} ms (hashd deploy ${web} --to root@b,root@c; inside hashd ${r.result?.durationMs} ms: ${perHost})`,
    );
    expect(r.code).toBe(0);
    const result = r.result as DeployResult;
    expect(result.ok).toBe(true);
    expect(result.hash).toBe(hashOf(web));
    expect(result.url).toBe(`http://${hashOf(web)}.test/`);
    expect(result.hosts.map((h) => h.ok && [h.host, h.copied, h.existing, h.deployment.state])).toEqual([
      ["root@b", true, false, "ready"],
      ["root@c", true, false, "ready"],
    ]);
    for (const h of [b, c]) {
      const res = await getUnix(h, `/run/hashd/sockets/${hashOf(web)}.sock`);
      expect(res.stdout).toStartWith(`200 web 1 ${hashOf(web)}`);
    }
  });

  test("deploying it again is dedup: nothing copied, nothing touched, fast", async () => {
    const unit = `hashd-${hashOf(web)}.service`;
    const before = await Promise.all([b, c].map((h) => unitProps(h, unit, ["MainPID", "InvocationID"])));
    const r = await deploy([web, "--to", "root@b,root@c"]);
    const perHost = r.result?.hosts.map((h) => `${h.host} ${h.durationMs} ms`).join(", ");
    console.log(
      `dedup deploy to 2 hosts: ${r.ms.toFixed(0)} ms (the same command again; inside hashd ${r.result?.durationMs} ms: ${perHost})`,
    );
    expect(r.code).toBe(0);
    expect(r.result?.hosts.map((h) => h.ok && [h.copied, h.existing])).toEqual([
      [false, true],
      [false, true],
    ]);
    expect(await Promise.all([b, c].map((h) => unitProps(h, unit, ["MainPID", "InvocationID"])))).toEqual(
      before,
    );
    // how fast it is printed above and measured in bench/deploy; a time limit here would fail on a
    // slow machine without saying anything about dedup, which the assertions above check

    // Is the store check worth its ssh call? Compare it with `nix copy` of a path already there,
    // each over a fresh connection and over a shared one (as deploy runs them).
    const mux = ["-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/%C", "-o", "ControlPersist=30"];
    const median = async (argv: string[], env: Record<string, string> = {}) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        const res = await laptop.exec(argv, { env });
        times.push(performance.now() - t);
        expect(res.code).toBe(0);
      }
      return (times.sort((x, y) => x - y)[2] ?? 0).toFixed(0);
    };
    const check = ["nix-store", "--check-validity", web];
    const copy = ["nix", "copy", "--to", "ssh-ng://root@b", web];
    const plainCheck = await median(["ssh", "-o", "BatchMode=yes", "root@b", ...check]);
    const plainCopy = await median(copy, { NIX_SSHOPTS: "-o BatchMode=yes" });
    const muxCheck = await median(["ssh", "-o", "BatchMode=yes", ...mux, "root@b", ...check]);
    const muxCopy = await median(copy, { NIX_SSHOPTS: ["-o", "BatchMode=yes", ...mux].join(" ") });
    await laptop.exec(["ssh", ...mux, "-O", "exit", "root@b"]);
    console.log(
      `present path, median of 5 (ms): ssh nix-store --check-validity ${plainCheck} (shared connection ${muxCheck}), ` +
        `nix copy --to ssh-ng ${plainCopy} (shared connection ${muxCopy})`,
    );
  });

  test("an unsigned closure is refused by both targets, named, and nothing is activated", async () => {
    const unsigned = await buildSigned({ name: "unsigned" }, false);
    const r = await deploy([unsigned, "--to", "root@b,root@c"]);
    expect(r.code).toBe(5);
    for (const host of ["root@b", "root@c"]) {
      expect(r.stderr).toContain(`${host}: copy failed (nix_failed): ${host} refused ${unsigned}`);
    }
    expect(r.stderr).toMatch(/signature/);
    expect(r.result?.hosts.map((h) => !h.ok && [h.error.stage, h.error.code])).toEqual([
      ["copy", "nix_failed"],
      ["copy", "nix_failed"],
    ]);
    for (const h of [b, c]) {
      expect(await inStore(h, unsigned)).toBe(false);
      expect(await listHashes(h)).not.toContain(hashOf(unsigned));
    }
  });

  test("an unreachable target is named; the other target is deployed", async () => {
    const path = await buildSigned({ name: "partial" });
    const r = await deploy([path, "--to", "root@b,root@nosuchhost"]);
    expect(r.code).toBe(8);
    expect(r.result?.hosts[0]).toMatchObject({ host: "root@b", ok: true });
    expect(r.result?.hosts[1]).toMatchObject({
      host: "root@nosuchhost",
      ok: false,
      error: { code: "unavailable", stage: "connect" },
    });
    expect(r.stderr).toContain("root@nosuchhost: connect failed (unavailable): cannot reach root@nosuchhost");
    expect(r.stderr).toContain("deployed and left as they are: root@b");
    expect((await getUnix(b, `/run/hashd/sockets/${hashOf(path)}.sock`)).stdout).toStartWith("200 partial");
  });

  test("a service that crashes at start fails on each host with its journal tail", async () => {
    crasher = await buildSigned({ name: "crasher", mode: "crash" });
    const path = crasher;
    const r = await deploy([path, "--to", "root@b,root@c"]);
    expect(r.code).toBe(6);
    for (const host of ["root@b", "root@c"])
      expect(r.stderr).toContain(`${host}: activate failed (systemd_failed)`);
    expect(r.stderr).toContain("crashing on purpose");
    expect(r.result?.hosts[0]).toMatchObject({
      ok: false,
      error: { stage: "activate", code: "systemd_failed" },
    });
    const shown = await hashdJson<{ deployment: { state: string } }>(b, ["show", hashOf(path)]);
    expect(shown.deployment.state).toBe("failed");
  });

  test("a broken manifest is bad_request, named per host, and nothing is activated", async () => {
    const path = await buildSigned({
      name: "broken",
      rawManifest: JSON.stringify({ schema: 1, name: "broken", exec: ["python3"], socket: { type: "tcp" } }),
    });
    const r = await deploy([path, "--to", "root@b,root@c"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("root@b: activate failed (bad_request)");
    expect(r.stderr).toContain("exec[0] must be an absolute path");
    for (const h of [b, c]) expect(await listHashes(h)).not.toContain(hashOf(path));
  });

  test("a flake installable is built on the laptop, then deployed", async () => {
    const system = JSON.parse(
      await laptop.run(["nix-instantiate", "--eval", "--expr", "builtins.currentSystem"]),
    );
    const expr = serviceExpr({ name: "flaky" }).replace("builtins.currentSystem", JSON.stringify(system));
    await laptop.writeFile(
      "/root/svc/flake.nix",
      `{ outputs = { self }: { packages.${system}.default = ${expr}; }; }`,
    );
    // built and signed first only so that the targets accept it; deploy builds it again (a no-op)
    const built = JSON.parse(
      await laptop.run([
        "nix",
        "--extra-experimental-features",
        "nix-command flakes",
        "build",
        "--no-link",
        "--json",
        "path:/root/svc#default",
      ]),
    )[0].outputs.out as string;
    await laptop.sign(built, secretKeyFile);
    const r = await deploy(["path:/root/svc#default", "--to", "root@b"]);
    expect(r.code).toBe(0);
    expect(r.result).toMatchObject({ ok: true, path: built, installable: "path:/root/svc#default" });
    expect((await getUnix(b, `/run/hashd/sockets/${hashOf(built)}.sock`)).stdout).toStartWith("200 flaky");
    const bad = await hashd(laptop, ["deploy", "path:/root/svc#nothing", "--to", "root@b"]);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain("nix build path:/root/svc#nothing");
  });

  test("--host: list, show and logs of a target from the laptop; logs locally on the target", async () => {
    const hash = hashOf(web);
    const list = await hashdJson<{ deployments: { hash: string }[] }>(laptop, ["list", "--host", "root@b"]);
    expect(list.deployments.map((d) => d.hash)).toContain(hash);
    const text = await hashd(laptop, ["show", hash, "--host", "root@c"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`url:     http://${hash}.test/`);
    // the crasher's stderr is in its journal (sandbox hosts log nothing from PID 1 itself)
    const crashed = hashOf(crasher);
    const remote = await hashdJson<{ unit: string; lines: string[] }>(laptop, [
      "logs",
      crashed,
      "-n",
      "5",
      "--host",
      "root@b",
    ]);
    expect(remote.unit).toBe(`hashd-${crashed}.service`);
    expect(remote.lines.join("\n")).toContain("crashing on purpose");
    expect(remote.lines.length).toBeLessThanOrEqual(5);
    const local = await hashd(b, ["logs", crashed]);
    expect(local.code).toBe(0);
    expect(local.stdout).toMatch(/^\d{4}-\d\d-\d\dT.*test service: crashing on purpose$/m); // short-iso
    const quiet = await hashd(b, ["logs", hash]);
    expect(quiet.code).toBe(0);
    const unknown = await hashd(laptop, ["logs", "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6", "--host", "root@b"]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain("not known on this host");
    const down = await hashd(laptop, ["list", "--host", "root@nosuchhost"]);
    expect(down.code).toBe(8);
    expect(down.stderr).toContain("cannot reach root@nosuchhost");
  });

  test("--alias: switched once every target is ready, or a clear error naming what is missing", async () => {
    const path = await buildSigned({ name: "aliased" });
    const r = await deploy([path, "--to", "root@b,root@c", "--alias", "prod"]);
    expect(r.result?.hosts.every((h) => h.ok)).toBe(true);
    const hasAlias = (await hashd(b, ["alias", "--help"])).code === 0;
    if (hasAlias) {
      expect(r.code).toBe(0);
      expect(r.result?.alias?.switched).toBe(true);
    } else {
      // the alias commands are another issue's; until they exist, deploy says exactly that
      expect(r.code).toBe(3);
      expect(r.result?.alias).toMatchObject({ name: "prod", switched: false });
      expect(r.stderr).toContain("the hashd on root@b has no `alias` command");
      expect(r.stderr).toContain(`${hashOf(path)} is live there; alias prod was not switched`);
    }
  });

  test("on a terminal, progress shows a line per host, and the summary follows", async () => {
    const path = await buildSigned({
      name: "tty",
      mode: "slow",
      startDelaySec: 1,
      readiness: { type: "notify" },
    });
    // script(1) gives the command a pseudo-terminal; the store path and targets are fixed strings
    const r = await laptop.exec(["script", "-qefc", `hashd deploy ${path} --to root@b,root@c`, "/dev/null"]);
    expect(r.code).toBe(0);
    const screen = Bun.stripANSI(r.stdout);
    expect(screen).toContain(`deploying ${path} to 2 host(s)`);
    expect(screen).toMatch(/root@b\s+(copy|activate)/);
    expect(screen).toMatch(/✓ root@c\s+ready/);
    expect(screen).toContain(`deployed: ${path}`);
    expect(screen).toMatch(/root@b\s+ready\s+[\d.]+s\s+\(copied, activated\)/);
    expect(r.stdout).not.toContain('"hosts"');
  });

  test("a target that crashed is named as unreachable; the other target is deployed", async () => {
    const path = await buildSigned({ name: "survivor" });
    await c.crash();
    const r = await deploy([path, "--to", "root@b,root@c"]);
    expect(r.code).toBe(8);
    expect(r.result?.hosts[0]).toMatchObject({ host: "root@b", ok: true });
    expect(r.result?.hosts[1]).toMatchObject({
      host: "root@c",
      ok: false,
      error: { code: "unavailable", stage: "connect" },
    });
    expect(r.stderr).toContain("cannot reach root@c");
    expect(await listHashes(b)).toContain(hashOf(path));
  });
});
