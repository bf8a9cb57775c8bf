/**
 * `hashd deploy` to two hosts over real SSH: wall time of a cold deploy (copy + activate +
 * readiness on both) and of a dedup deploy (the same hash again), and what one ssh round trip
 * costs (fresh connection vs shared, the floor of a dedup deploy).
 *
 *   bun bench/deploy/run.ts [--samples 7]
 *
 * Three sandbox hosts: "laptop" runs `hashd deploy` (CLI start-up included, as a user sees it),
 * "b" and "c" run the agent and trust the laptop's signing key. Services use notify readiness.
 */
import { parseArgs } from "node:util";
import { ensureBinary, hashd, installAgent } from "../../test/sandbox/agent-host.ts";
import { Sandbox } from "../../test/sandbox/harness.ts";
import { serviceExpr } from "../../test/sandbox/service-closures.ts";

const { values } = parseArgs({ options: { samples: { type: "string", default: "7" } } });
const samples = Number(values.samples);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;
const fmt = (xs: number[]) =>
  `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

const sb = await Sandbox.create({ hosts: ["laptop", "b", "c"] });
try {
  const [laptop, b, c] = [sb.host("laptop"), sb.host("b"), sb.host("c")];
  await sb.enableRootSsh();
  const key = await laptop.generateSigningKey("bench-1");
  await laptop.installBinary(await ensureBinary(), "/usr/local/bin/hashd");
  await Promise.all(
    [b, c].map(async (h) => {
      await installAgent(h);
      await h.trustPublicKeys([key.publicKey]);
    }),
  );
  const exprs = Array.from({ length: samples }, (_, i) =>
    serviceExpr({ name: `bench${i}`, readiness: { type: "notify" } }),
  );
  await laptop.writeFile("/root/bench.nix", `[\n${exprs.map((e) => `(${e})`).join("\n")}\n]`);
  const paths = (await laptop.run(["nix-build", "--no-out-link", "/root/bench.nix"])).trim().split("\n");
  for (const p of paths) await laptop.sign(p, key.secretKeyFile);

  const timed = async (argv: string[]) => {
    const t = performance.now();
    const r = await laptop.exec(argv);
    if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
    return performance.now() - t;
  };
  const cold: number[] = [];
  const dedup: number[] = [];
  for (const p of paths) {
    cold.push(await timed(["hashd", "deploy", p, "--to", "root@b,root@c"]));
    dedup.push(await timed(["hashd", "deploy", p, "--to", "root@b,root@c"]));
  }
  const fresh: number[] = [];
  const shared: number[] = [];
  const mux = ["-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/%C", "-o", "ControlPersist=30"];
  for (let i = 0; i < samples; i++) fresh.push(await timed(["ssh", "-o", "BatchMode=yes", "root@b", "true"]));
  await timed(["ssh", ...mux, "root@b", "true"]);
  for (let i = 0; i < samples; i++) shared.push(await timed(["ssh", ...mux, "root@b", "true"]));
  await laptop.exec(["ssh", ...mux, "-O", "exit", "root@b"]);
  const cli: number[] = [];
  for (let i = 0; i < samples; i++) cli.push(await timed(["hashd", "--version"]));
  const live: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    await hashd(b, ["activate", paths[0] ?? "", "--json"]);
    live.push(performance.now() - t);
  }

  console.log(`hashd deploy <path> --to root@b,root@c (${samples} samples, wall time on the laptop)`);
  console.log(`  cold (copy + activate + ready on both):  ${fmt(cold)}`);
  console.log(`  dedup (already live on both):            ${fmt(dedup)}`);
  console.log(`ssh root@b true, fresh connection:         ${fmt(fresh)}`);
  console.log(`ssh root@b true, shared connection:        ${fmt(shared)}`);
  console.log(`hashd --version (CLI start-up):            ${fmt(cli)}`);
  console.log(`hashd activate <live path> on b (local):   ${fmt(live)}`);
} finally {
  await sb.destroy();
}
