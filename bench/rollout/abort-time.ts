/**
 * Abort time of a staged rollout on three sandbox hosts: from the first failing request of a bad
 * canary (it answers 500 to 30% of its requests) to every ingress routing 100% of the alias to the
 * old hash again. Load runs through all three ingresses from 120 cookie-less client addresses (the
 * split is by client address); the end is the last answer any cookie-less client got from the
 * canary at each ingress, the latest of the three. The rollout uses the default analysis window
 * (--interval 5s) and min-requests (200), so rule 3 (more errors than min-requests may have) aborts
 * at the first window with enough errors. Target: under two windows (10 s) and under 10 s.
 *
 *   sudo bun run build && sudo bun bench/rollout/abort-time.ts [--runs 5] [--interval 5s]
 *
 * Prints each run and the median. Needs root (the sandbox boots systemd hosts: test/sandbox/harness.ts).
 */
import { parseArgs } from "node:util";
import { hashd, hashdJson, installCluster, waitFor } from "../../test/sandbox/agent-host.ts";
import { type Host, Sandbox } from "../../test/sandbox/harness.ts";
import { addClientAddresses, mergeSummaries, startRolloutLoad } from "../../test/sandbox/load-generator.ts";
import { serviceExpr } from "../../test/sandbox/service-closures.ts";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "5" }, interval: { type: "string", default: "5s" } },
});
const runs = Number(values.runs);
const median = (xs: number[]) => {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2
    ? (s[s.length >> 1] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

const sb = await Sandbox.create({ hosts: ["a", "b", "c"] });
try {
  const hosts = sb.hosts();
  const [a] = hosts as [Host];
  await installCluster(hosts, { config: { quietSec: 2 } });
  const clients = new Map<Host, string[]>();
  const v1 = await Promise.all(
    hosts.map(async (h, i) => {
      clients.set(h, await addClientAddresses(h, i, 40));
      return h.nixBuild(serviceExpr({ name: "web", version: "1", environment: { TEST_SLEEP_MS: "20" } }));
    }),
  );
  const v1Hash = (v1[0] as string).slice(11, 43);
  const activate = (p: string) => Promise.all(hosts.map((h) => hashdJson(h, ["activate", p, "--wait"])));
  await activate(v1[0] as string);
  await waitFor(
    "three members alive",
    async () =>
      (await hashdJson<{ members: { state: string }[] }>(a, ["members"])).members.filter(
        (m) => m.state === "alive",
      ).length === 3,
    60_000,
  );
  const results: number[] = [];
  for (let r = 1; r <= runs; r++) {
    const bad = (
      await Promise.all(
        hosts.map((h) =>
          h.nixBuild(
            serviceExpr({
              name: "web",
              version: `bad-${r}`,
              environment: { TEST_SLEEP_MS: "20", TEST_FAIL_PERCENT: "30" },
            }),
          ),
        ),
      )
    )[0] as string;
    const badHash = bad.slice(11, 43);
    await activate(bad);
    await hashd(a, ["alias", "set", `prod=${v1Hash}`]);
    await Bun.sleep(2000);
    const load = await startRolloutLoad({
      on: hosts.map((h) => ({
        host: h,
        clients: (clients.get(h) as string[]).map((src) => ({ src, cookie: false })),
      })),
      ingresses: hosts,
      alias: "prod",
    });
    await Bun.sleep(2000);
    const start = await hashd(a, [
      "rollout",
      "start",
      "prod",
      badHash,
      "--interval",
      values.interval as string,
    ]);
    if (start.code !== 0) throw new Error(`rollout start: ${start.stderr}`);
    await waitFor(
      "aborted",
      async () =>
        (await hashdJson<{ rollout: { status: string } }>(a, ["rollout", "status", "prod"])).rollout
          .status === "aborted",
      120_000,
    );
    await Bun.sleep(3000); // long enough to see that no ingress still routes to the canary
    const s = mergeSummaries(await load.stop());
    const last = s.lastCookieless[badHash] ?? [];
    const back = Math.max(...last);
    const ms = back - s.firstFailAt;
    const note = (await hashdJson<{ rollout: { note: string } }>(a, ["rollout", "status", "prod"])).rollout
      .note;
    console.log(
      `run ${r}: ${ms} ms from the first failing request to every ingress on the old hash ` +
        `(per ingress ${last.map((t) => t - s.firstFailAt).join(", ")} ms; ${s.failed} failed of ${s.ok + s.failed}; ${note})`,
    );
    results.push(ms);
  }
  const m = median(results);
  console.log(
    `abort time, median of ${runs}: ${m} ms (window ${values.interval}; target < 2 windows and < 10 s: ${
      m < 10_000 ? "met" : "NOT met"
    })`,
  );
} finally {
  await sb.destroy();
}
