/**
 * What a cold request costs over the service's own start: a request through the ingress to a
 * hash whose service is stopped (socket only) versus the same request warm, minus the service's
 * own time from exec to READY=1 (systemd's timestamps).
 *
 *   bun bench/cold-start/run.ts [--samples 15]
 */
import { parseArgs } from "node:util";
import { hashdJson, installAgent } from "../../test/sandbox/agent-host.ts";
import { Sandbox } from "../../test/sandbox/harness.ts";
import { serviceExpr } from "../../test/sandbox/service-closures.ts";

const { values } = parseArgs({ options: { samples: { type: "string", default: "15" } } });
const samples = Number(values.samples);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[s.length >> 1] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

// Inside the host: time one GET through the ingress, in ms (python: no bun start-up in the figure).
const TIME_GET = String.raw`
import http.client, sys, time
c = http.client.HTTPConnection("127.0.0.1", 8480, timeout=60)
t0 = time.monotonic()
c.request("GET", "/", headers={"Host": sys.argv[1] + ".test"})
r = c.getresponse(); body = r.read()
print("%d %.3f %s" % (r.status, (time.monotonic() - t0) * 1000, body[:200]))
`;

const sb = await Sandbox.create({ hosts: ["cold"] });
try {
  const host = sb.host("cold");
  await installAgent(host, { config: { zone: "test" } });
  const path = await host.nixBuild(serviceExpr({ name: "cold", readiness: { type: "notify" } }));
  const hash = path.slice(11, 43);
  await hashdJson(host, ["activate", path, "--lazy"]);
  const get = async () => {
    const out = (await host.run(["/usr/bin/python3", "-c", TIME_GET, hash])).trim().split(" ");
    if (out[0] !== "200") throw new Error(`cold request failed: ${out.join(" ")}`);
    return Number(out[1]);
  };
  const cold: number[] = [];
  const own: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < samples; i++) {
    await host.run(["systemctl", "stop", `hashd-${hash}.service`]);
    cold.push(await get());
    const p = Object.fromEntries(
      (
        await host.run([
          "systemctl",
          "show",
          "--property=ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic",
          `hashd-${hash}.service`,
        ])
      )
        .trim()
        .split("\n")
        .map((l) => l.split("=") as [string, string]),
    );
    own.push((Number(p.ActiveEnterTimestampMonotonic) - Number(p.ExecMainStartTimestampMonotonic)) / 1000);
    for (let j = 0; j < 3; j++) warm.push(await get());
  }
  const added = cold.map((c, i) => c - (own[i] ?? 0) - median(warm));
  console.log(`cold request through the ingress (python3 service, socket activation), n=${samples}`);
  console.log(
    "cold total ms | service exec->READY ms | warm request ms | added by cold start ms (median) | max",
  );
  console.log(
    [median(cold), median(own), median(warm), median(added), Math.max(...added)]
      .map((x) => x.toFixed(1))
      .join(" | "),
  );
} finally {
  await sb.destroy();
}
