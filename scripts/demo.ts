/**
 * The demo, on three sandbox hosts (real systemd 252 and Nix in Linux namespaces on a private
 * bridge; see test/sandbox/harness.ts): a "laptop" builds the example chain (frontend -> backend,
 * made with the flake's lib.mkService and lib.mkHashUrl), signs it, and `hashd deploy`s it over SSH
 * to two servers that form a gossip cluster; prod is switched to v2 under a little load; v1 retires
 * top-down; the status page is shown (a screenshot from a real browser inside the cluster).
 *
 *   bun run demo            # tells the story and cleans up
 *   bun run demo --keep     # then leaves the hosts up until Ctrl-C, with commands to look around
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import {
  EXAMPLE_CREDENTIALS,
  ensureBinary,
  hashd,
  installCluster,
  installNixLib,
  writeExampleSecrets,
} from "../test/sandbox/agent-host.ts";
import { browserOn, CHROMIUM } from "../test/sandbox/browser.ts";
import { type Host, Sandbox } from "../test/sandbox/harness.ts";
import { LOAD_GENERATOR_TS, type LoadSummary } from "../test/sandbox/load-generator.ts";

const keep = process.argv.includes("--keep");
const bold = (t: string) => (process.stdout.isTTY ? `\x1b[1m${t}\x1b[0m` : t);
const step = (text: string) => console.log(`\n${bold(`==> ${text}`)}`);
const show = async (h: Host, args: string[]) => {
  console.log(`${h.name}$ hashd ${args.join(" ")}`);
  const r = await hashd(h, args, 300_000);
  console.log((r.stdout + r.stderr).trim());
  if (r.code !== 0) throw new Error(`hashd ${args[0]} failed on ${h.name} (exit ${r.code})`);
  return r;
};
const hashOf = (p: string) => p.slice(11, 43);

interface DeployResult {
  ok: boolean;
  url: string;
  durationMs: number;
  hosts: {
    host: string;
    ok: boolean;
    copied?: boolean;
    existing?: boolean;
    durationMs: number;
    error?: { message: string };
  }[];
  alias?: { name: string; switched: boolean };
}

/** `hashd deploy --json` from the laptop, summarised a line per host. */
const deploy = async (laptop: Host, path: string, targets: string, alias?: string) => {
  const args = ["deploy", path, "--to", targets, ...(alias ? ["--alias", alias] : []), "--json"];
  console.log(`laptop$ hashd ${args.slice(0, -1).join(" ")}`);
  const r = await hashd(laptop, args, 300_000);
  const result = JSON.parse(r.stdout) as DeployResult;
  for (const h of result.hosts) {
    const what = h.ok
      ? `${h.existing ? "already live" : "ready"}${h.copied ? " (copied)" : ""}`
      : `FAILED: ${h.error?.message}`;
    console.log(`  ${h.host.padEnd(10)} ${what}  ${h.durationMs} ms`);
  }
  if (result.alias)
    console.log(
      `  alias ${result.alias.name} -> ${hashOf(path)}: ${result.alias.switched ? "switched" : "NOT switched"}`,
    );
  console.log(`  ${result.url}  (${result.durationMs} ms in all)`);
  if (!result.ok) throw new Error("deploy failed");
};

step("booting three hosts: laptop, web1, web2 (systemd as PID 1, private /nix, sshd, nix-daemon)");
const sb = await Sandbox.create({ hosts: ["laptop", "web1", "web2"] });
try {
  const [laptop, web1, web2] = sb.hosts() as [Host, Host, Host];
  for (const h of sb.hosts()) console.log(`  ${h.name.padEnd(7)} ${h.ip}`);

  step("installing the agent on web1 and web2: one cluster (shared key, gossip), ingress on :8480");
  await sb.enableRootSsh();
  // the example backend's credential, a file on each host (services.hashd.credentials on NixOS)
  for (const h of [web1, web2]) await writeExampleSecrets(h);
  await installCluster([web1, web2], {
    config: { quietSec: 3, status: { address: "0.0.0.0", port: 8481 }, credentials: EXAMPLE_CREDENTIALS },
  });
  await laptop.installBinary(await ensureBinary(), "/usr/local/bin/hashd");
  const key = await laptop.generateSigningKey("laptop-1");
  for (const h of [web1, web2]) await h.trustPublicKeys([key.publicKey]);
  await Bun.sleep(1500);
  await show(web1, ["members"]);

  step("building the example chain on the laptop with nix (v1 and v2), and signing it");
  const example = `${await installNixLib(laptop)}/example`;
  const build = (v: string) =>
    laptop.nixBuild(`(import ${example} { version = "${v}"; zone = "test"; }).frontend`);
  const v1 = await build("1");
  const v2 = await build("2");
  for (const p of [v1, v2]) await laptop.sign(p, key.secretKeyFile);
  console.log(`v1 frontend: ${v1}\nv2 frontend: ${v2}`);
  console.log(
    `v1 frontend references: ${(await laptop.run(["nix-store", "-q", "--references", v1])).trim().split("\n").join(" ")}`,
  );

  step("hashd deploy v1 --to web1,web2 --alias prod   (copy over ssh-ng, activate, wait for ready, switch)");
  // the backend is a Nix reference of the frontend: nix copy brings it along; activate it too
  const backendOf = async (p: string) =>
    (await laptop.run(["nix-store", "-q", "--references", p]))
      .trim()
      .split("\n")
      .find((r) => r.includes("backend")) as string;
  await deploy(laptop, await backendOf(v1), "root@web1,root@web2");
  await deploy(laptop, v1, "root@web1,root@web2", "prod");
  const prod = async (h: Host) =>
    (await h.run(["curl", "-sS", "-H", "Host: prod.test", "http://127.0.0.1:8480/"])).trim();
  console.log(`web2$ curl -H 'Host: prod.test' http://127.0.0.1:8480/\n${await prod(web2)}`);

  step("a little load on prod (two clients per server), then v2 deployed and prod switched");
  for (const h of [web1, web2]) await h.writeFile("/root/load.ts", LOAD_GENERATOR_TS);
  const loads = [web1, web2].map((h) =>
    h.spawn(["/usr/bin/bun", "/root/load.ts", "http://127.0.0.1:8480", "prod.test", "2", "/root/stop"], {
      stdout: "pipe",
    }),
  );
  await Bun.sleep(1000);
  await deploy(laptop, await backendOf(v2), "root@web1,root@web2");
  await deploy(laptop, v2, "root@web1,root@web2", "prod");
  console.log(`web1$ curl -H 'Host: prod.test' http://127.0.0.1:8480/\n${await prod(web1)}`);

  step("v1 is unwanted now: it drains, then retires top-down (frontend first, then its backend)");
  const v1Backend = hashOf(await backendOf(v1));
  for (let i = 0; i < 120; i++) {
    const r = await hashd(web1, ["show", v1Backend, "--json"]);
    if (r.code === 0 && JSON.parse(r.stdout).deployment.state === "retired") break;
    await Bun.sleep(500);
  }
  await show(web1, ["list"]);
  console.log(`\nweb1$ hashd show ${v1Backend}   (the events say why, and when)`);
  console.log((await hashd(web1, ["show", v1Backend])).stdout.trim());

  for (const h of [web1, web2]) await h.writeFile("/root/stop", "");
  const summaries = await Promise.all(
    loads.map(async (p) => JSON.parse(await new Response(p.stdout as ReadableStream).text()) as LoadSummary),
  );
  const ok = summaries.reduce((n, s) => n + s.ok, 0);
  const failed = summaries.reduce((n, s) => n + s.failed, 0);
  console.log(`\nload during the upgrade: ${ok} requests answered, ${failed} failed`);

  step("the status page (a real browser inside the cluster's network)");
  const png = await screenshot(web1);
  console.log(png ? `screenshot: ${png}` : "(chromium not installed: skipped the screenshot)");
  console.log(`status page: http://${web1.ip}:8481/  (on the sandbox bridge; from the machine:`);
  console.log(`  nsenter -t ${web1.pid} -n curl -s http://127.0.0.1:8481/api/status )`);

  if (keep) {
    console.log(
      `\nThe hosts stay up. Look around with:\n  nsenter -t ${web1.pid} -a bash\nPress Ctrl-C to stop.`,
    );
    await new Promise((r) => {
      process.once("SIGINT", r);
      process.once("SIGTERM", r);
    });
  }
} finally {
  step("cleaning up the sandbox");
  await sb.destroy();
}

/** The status page of `host`, seen by a real browser inside the cluster's network. */
async function screenshot(host: Host): Promise<string | undefined> {
  if (!existsSync(CHROMIUM)) return undefined;
  const { browser, close } = await browserOn(host);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto("http://127.0.0.1:8481/");
    await page.waitForSelector("svg");
    const out = resolve(import.meta.dir, "../test/output/demo-status-page.png");
    await page.screenshot({ path: out, fullPage: true });
    return out;
  } finally {
    await close();
  }
}
