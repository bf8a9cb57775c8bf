/**
 * Aliases across a cluster of five sandbox hosts:
 * (1) time from `hashd alias set prod=<hash>` on one host until every host's ingress routes
 *     prod.<zone> to the new hash (each host polls its own ingress; the hosts share one clock);
 * (2) time from the end of the last in-flight request of an unwanted hash until it is retired on
 *     every member (quietSec is set to 2 s here; the figure is that plus detection).
 *
 *   bun bench/alias-switch/run.ts [--switches 10] [--hosts 5]
 */
import { parseArgs } from "node:util";
import { hashdJson, installCluster } from "../../test/sandbox/agent-host.ts";
import { type Host, Sandbox } from "../../test/sandbox/harness.ts";
import { serviceExpr } from "../../test/sandbox/service-closures.ts";

const { values } = parseArgs({
  options: { switches: { type: "string", default: "10" }, hosts: { type: "string", default: "5" } },
});
const switches = Number(values.switches);
const names = Array.from({ length: Number(values.hosts) }, (_, i) => `h${i + 1}`);
const QUIET_SEC = 2;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[s.length >> 1] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

// Runs inside each host: polls its ingress for prod until the body names `want`, prints the time.
const POLL_TS = String.raw`
const [want] = process.argv.slice(2);
for (;;) {
  try {
    const r = await fetch("http://127.0.0.1:8480/", { headers: { host: "prod.test" } });
    const t = await r.text();
    if (t.includes(want)) { console.log(Date.now()); process.exit(0); }
  } catch {}
  await Bun.sleep(2);
}
`;

const sb = await Sandbox.create({ hosts: names });
try {
  const hosts = sb.hosts();
  await installCluster(hosts, { config: { quietSec: QUIET_SEC } });
  const versions = ["1", "2", "3"];
  const paths: string[] = [];
  for (const v of versions) {
    const expr = serviceExpr({ name: "switch", version: v });
    for (const h of hosts) paths[Number(v) - 1] = await h.nixBuild(expr);
  }
  await Promise.all(
    hosts.map(async (h) => {
      for (const p of paths.slice(0, 2)) await hashdJson(h, ["activate", p, "--wait"]);
      await h.writeFile("/root/poll.ts", POLL_TS);
    }),
  );
  const hashOf = (p: string) => p.slice(11, 43);
  const until = (want: string) =>
    Promise.all(
      hosts.map((h) => h.run(["/usr/bin/bun", "/root/poll.ts", want], { timeoutMs: 60_000 }).then(Number)),
    );
  await hashdJson(hosts[0] as Host, ["alias", "set", `prod=${hashOf(paths[0] as string)}`]);
  await until(hashOf(paths[0] as string));

  const worst: number[] = [];
  const medians: number[] = [];
  for (let i = 1; i <= switches; i++) {
    const target = paths[i % 2] as string;
    const writer = hosts[i % hosts.length] as Host;
    const pollers = until(hashOf(target));
    await Bun.sleep(300); // pollers running
    const t0 = Date.now();
    await hashdJson(writer, ["alias", "set", `prod=${hashOf(target)}`]);
    const seen = (await pollers).map((t) => t - t0);
    worst.push(Math.max(...seen));
    medians.push(median(seen));
  }
  console.log(
    `alias set -> every ingress routes to the new hash (${hosts.length} hosts, ${switches} switches)`,
  );
  console.log(
    `median over hosts: ${median(medians).toFixed(0)} ms; slowest host: median ${median(worst).toFixed(0)} ms, max ${Math.max(...worst)} ms`,
  );
  console.log("(includes the hashd CLI's own start, ~40 ms, on the writing host)");

  // (2) last in-flight request of an unwanted hash -> retired on every member
  const v3 = paths[2] as string;
  await Promise.all(hosts.map((h) => hashdJson(h, ["activate", v3, "--wait"])));
  await hashdJson(hosts[0] as Host, ["alias", "set", `prod=${hashOf(v3)}`]);
  await until(hashOf(v3));
  const old = hashOf(paths[1] as string); // v2, now unwanted; v1 was already unwanted
  const a = hosts[0] as Host;
  // keep one request in flight on v2 through host a's ingress, then let it end
  const long = a
    .run(["curl", "-sS", "-H", `Host: ${old}.test`, "http://127.0.0.1:8480/sleep/4"])
    .then(() => Date.now());
  const ended = await long;
  const retiredAt = await Promise.all(
    hosts.map(async (h) => {
      for (;;) {
        const shown = await hashdJson<{
          deployment: { state: string };
          events: { kind: string; at: number }[];
        }>(h, ["show", old]);
        const ev = shown.events.find((e) => e.kind === "retired");
        if (ev) return ev.at;
        await Bun.sleep(200);
      }
    }),
  );
  const lag = retiredAt.map((t) => t - ended);
  console.log(
    `last in-flight request of an unwanted hash -> retired on every member (quietSec ${QUIET_SEC}):`,
  );
  console.log(`median ${median(lag).toFixed(0)} ms, max ${Math.max(...lag)} ms`);
} finally {
  await sb.destroy();
}
