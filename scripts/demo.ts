/**
 * The demo: boots a sandbox host (real systemd + nix in namespaces, see docs/sandbox.md), installs
 * the compiled agent as a Type=notify unit, builds two versions of a service closure with nix,
 * activates both, and shows each answering at its own hash: two versions side by side, each
 * started by its first connection.
 *
 *   bun run demo            # runs the story and cleans up
 *   bun run demo --keep     # leaves the host up until Ctrl-C, printing how to enter it
 */
import { getUnix, hashd, installAgent } from "../test/sandbox/agent-host.ts";
import { Sandbox } from "../test/sandbox/harness.ts";
import { serviceExpr } from "../test/sandbox/service-closures.ts";

const keep = process.argv.includes("--keep");
const step = (text: string) => console.log(`\n\x1b[1m==> ${text}\x1b[0m`);

step("booting a sandbox host (systemd 252 as PID 1, private /nix, sshd, nix-daemon)");
const sb = await Sandbox.create({ hosts: ["demo"] });
const host = sb.host("demo");
try {
  console.log(`host demo is up at ${host.ip} (systemd pid ${host.pid})`);

  step("installing the hashd agent (Type=notify unit, state in /var/lib/hashd)");
  await installAgent(host, { config: { zone: "localhost" } });
  console.log((await host.run(["systemctl", "status", "--no-pager", "--lines=0", "hashd.service"])).trim());

  step("building two versions of a service closure with nix (no nixpkgs: builtins.derivation)");
  const v1 = (await host.nixBuild(serviceExpr({ name: "hello", version: "1" }))).trim();
  const v2 = (await host.nixBuild(serviceExpr({ name: "hello", version: "2" }))).trim();
  console.log(`v1: ${v1}\nv2: ${v2}`);

  for (const path of [v1, v2]) {
    step(`hashd activate --lazy ${path}`);
    const r = await hashd(host, ["activate", "--lazy", path]);
    console.log(r.stdout.trim() || r.stderr.trim());
  }

  step("the socket units listen; no service process runs yet");
  console.log(
    (
      await host.run(["systemctl", "list-units", "--all", "--no-pager", "--plain", "--no-legend", "hashd-*"])
    ).trim(),
  );

  for (const path of [v1, v2]) {
    const hash = path.slice(11, 43);
    step(`first request to ${hash} (through its socket; systemd starts the service)`);
    const res = await getUnix(host, `/run/hashd/sockets/${hash}.sock`);
    console.log(res.stdout.trim());
  }

  step("hashd list");
  console.log((await hashd(host, ["list"])).stdout.trim());

  step("kill -9 the agent: the services keep running and are re-adopted");
  await host.run(["systemctl", "kill", "--signal=KILL", "hashd.service"]);
  await Bun.sleep(1500);
  console.log((await hashd(host, ["list"])).stdout.trim());

  if (keep) {
    console.log(
      `\nThe host stays up. Enter it with:\n  nsenter -t ${host.pid} -a bash\nPress Ctrl-C to stop.`,
    );
    await new Promise((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
  }
} finally {
  step("cleaning up the sandbox");
  await sb.destroy();
}
