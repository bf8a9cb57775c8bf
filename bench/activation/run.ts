/**
 * Activation overhead: time from the activate call to `ready` for a closure already in the store,
 * minus the service's own time to ready, with 1, 100 and 1,000 hashes already live on the host.
 * Also the agent's resident memory idle and with 1,000 hashes.
 *
 *   bun bench/activation/run.ts [--samples 15] [--counts 1,100,1000]
 *
 * Runs in one sandbox host (real systemd 252, real nix). The client inside the host is python3
 * over the control socket, so no CLI start-up time is counted.
 */
import { parseArgs } from "node:util";
import { installAgent } from "../../test/sandbox/agent-host.ts";
import { type Host, Sandbox } from "../../test/sandbox/harness.ts";
import { serviceExpr } from "../../test/sandbox/service-closures.ts";

const { values } = parseArgs({
  options: { samples: { type: "string", default: "15" }, counts: { type: "string", default: "1,100,1000" } },
});
const samples = Number(values.samples);
const counts = (values.counts ?? "").split(",").map(Number);
const maxCount = Math.max(...counts);

const CLIENT_PY = String.raw`
import http.client, json, socket, sys, time
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect("/run/hashd/control.sock")
out = []
for path in sys.argv[2:]:
    c = C("agent", timeout=300)
    body = json.dumps({"path": path, "wait": sys.argv[1] == "wait", "lazy": sys.argv[1] == "lazy"})
    t0 = time.monotonic()
    c.request("POST", "/v1/deployments", body, {"content-type": "application/json"})
    r = c.getresponse()
    data = r.read()
    t1 = time.monotonic()
    if r.status >= 300:
        sys.exit("activate %s: %d %s" % (path, r.status, data))
    out.append({"path": path, "ms": (t1 - t0) * 1000})
print(json.dumps(out))
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0;

async function buildMany(host: Host, prefix: string, n: number, notify: boolean): Promise<string[]> {
  const exprs = Array.from({ length: n }, (_, i) =>
    serviceExpr({ name: `${prefix}${i}`, readiness: notify ? { type: "notify" } : { type: "accept" } }),
  );
  await host.writeFile(`/root/${prefix}.nix`, `[\n${exprs.map((e) => `(${e})`).join("\n")}\n]`);
  const out = await host.run(["nix-build", "--no-out-link", "--max-jobs", "8", `/root/${prefix}.nix`], {
    timeoutMs: 900_000,
  });
  return out.trim().split("\n");
}

async function activateAll(host: Host, mode: "wait" | "lazy", paths: string[]): Promise<number[]> {
  const r = await host.exec(["/usr/bin/python3", "-c", CLIENT_PY, mode, ...paths], { timeoutMs: 1_800_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { ms: number }[]).map((x) => x.ms);
}

/** The service's own time to ready: from its process start to READY=1 (systemd's timestamps). */
async function ownReadyMs(host: Host, hash: string): Promise<number> {
  const out = await host.run([
    "systemctl",
    "show",
    "--property=ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic",
    `hashd-${hash}.service`,
  ]);
  const p = Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => l.split("=") as [string, string]),
  );
  return (Number(p.ActiveEnterTimestampMonotonic) - Number(p.ExecMainStartTimestampMonotonic)) / 1000;
}

async function agentRssMiB(host: Host): Promise<number> {
  const pid = (
    await host.run(["systemctl", "show", "--property=MainPID", "--value", "hashd.service"])
  ).trim();
  const status = await host.readFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

const sb = await Sandbox.create({ hosts: ["bench"] });
try {
  const host = sb.host("bench");
  await installAgent(host);
  console.error(`building ${maxCount} filler closures and ${samples * counts.length} probes...`);
  const fillers = await buildMany(host, "filler", maxCount, false);
  const probes = await buildMany(host, "probe", samples * counts.length, true);
  const rssIdle = await agentRssMiB(host);
  const rows: string[][] = [];
  let live = 0;
  for (const [i, count] of counts.entries()) {
    if (count > live) {
      const t0 = performance.now();
      await activateAll(host, "lazy", fillers.slice(live, count));
      console.error(
        `  ${count - live} lazy activations in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      live = count;
    }
    const batch = probes.slice(i * samples, (i + 1) * samples);
    const totals = await activateAll(host, "wait", batch);
    const own = await Promise.all(batch.map((p) => ownReadyMs(host, p.slice(11, 43))));
    const overhead = totals.map((t, j) => t - (own[j] ?? 0));
    rows.push([
      String(count),
      median(totals).toFixed(1),
      median(own).toFixed(1),
      median(overhead).toFixed(1),
      pct(overhead, 0.9).toFixed(1),
    ]);
  }
  const rssLoaded = await agentRssMiB(host);
  console.log(
    `activation overhead (activate call -> ready, minus the service's own start-to-READY), n=${samples}`,
  );
  console.log(
    ["live hashes", "total ms (median)", "service own ms", "overhead ms (median)", "overhead p90"].join(
      " | ",
    ),
  );
  for (const r of rows) console.log(r.join(" | "));
  console.log(
    `agent RSS: ${rssIdle.toFixed(1)} MiB idle, ${rssLoaded.toFixed(1)} MiB with ${live + probes.length} hashes`,
  );
} finally {
  await sb.destroy();
}
