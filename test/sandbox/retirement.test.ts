/**
 * The heart of hashd, end to end on three hosts: a frontend -> backend chain (the flake's example,
 * built with lib.mkService and lib.mkHashUrl) under steady load to prod.<zone> on every host,
 * while v2 is deployed, prod is switched to v2, rolled back, switched again, and v1 retires.
 * Then the same upgrade done pit-stop, for comparison.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  EXAMPLE_CREDENTIALS,
  hashdJson,
  installCluster,
  installNixLib,
  releaseHold,
  takeHold,
  unitProps,
  waitFor,
  writeExampleSecrets,
} from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { LOAD_GENERATOR_TS, type LoadSummary } from "./load-generator.ts";

// The two upgrades under load take 72 s and 94 s here: room for a machine six times slower.
setDefaultTimeout(600_000);

let sb: Sandbox;
let hosts: Host[];
const v1 = { frontend: "", backend: "" };
const v2 = { frontend: "", backend: "" };
const hashOf = (p: string) => p.slice(11, 43);

interface Event {
  at: number;
  kind: string;
  message: string;
}

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a", "b", "c"] });
  hosts = sb.hosts();
  // the example backend names a credential: each host maps it to a file
  for (const h of hosts) await writeExampleSecrets(h);
  await installCluster(hosts, { config: { quietSec: 2, credentials: EXAMPLE_CREDENTIALS } });
  // Every host builds the same closures (same inputs, same store paths): no copy needed here.
  for (const h of hosts) {
    const example = `${await installNixLib(h)}/example`;
    for (const [v, out] of [
      ["1", v1],
      ["2", v2],
    ] as const) {
      out.frontend = await h.nixBuild(`(import ${example} { version = "${v}"; zone = "test"; }).frontend`);
      out.backend = await h.nixBuild(`(import ${example} { version = "${v}"; zone = "test"; }).backend`);
    }
  }
}, 600_000);

afterAll(async () => {
  await sb?.destroy();
});

async function activateEverywhere(paths: string[]): Promise<void> {
  await Promise.all(
    hosts.map(async (h) => {
      for (const p of paths) await hashdJson(h, ["activate", p, "--wait"]);
    }),
  );
}

async function route(h: Host): Promise<string> {
  const r = await h.exec(["curl", "-sS", "-H", "Host: prod.test", "http://127.0.0.1:8480/"]);
  return r.stdout;
}

async function events(h: Host, hash: string): Promise<Event[]> {
  return (await hashdJson<{ events: Event[] }>(h, ["show", hash])).events;
}

async function state(h: Host, hash: string): Promise<string> {
  return (await hashdJson<{ deployment: { state: string } }>(h, ["show", hash])).deployment.state;
}

describe("blue-green by hash with top-down retirement", () => {
  test("the frontend's closure references its backend: the dependency edge comes from Nix", async () => {
    const d = await hashdJson<{ deployment: { refs: string[] } }>(hosts[0] as Host, [
      "activate",
      v1.frontend,
    ]);
    expect(d.deployment.refs).toEqual([hashOf(v1.backend)]);
  });

  test("switch, rollback, switch under load: no failed request, no mixed pair, v1 retires top-down", async () => {
    const [a, b, c] = hosts as [Host, Host, Host];
    await activateEverywhere([v1.backend, v1.frontend]);
    await hashdJson(a, ["alias", "set", `prod=${hashOf(v1.frontend)}`]);
    for (const h of hosts)
      await waitFor(`prod routes to v1 on ${h.name}`, async () =>
        (await route(h)).includes('"version": "1"'),
      );

    for (const h of hosts) await h.writeFile("/root/load.ts", LOAD_GENERATOR_TS);
    const procs = hosts.map((h) =>
      h.spawn(["/usr/bin/bun", "/root/load.ts", "http://127.0.0.1:8480", "prod.test", "4", "/root/stop"], {
        stdout: "pipe",
      }),
    );
    // a long request that starts on v1 and must finish on v1
    const long = a.exec(["curl", "-sS", "-H", "Host: prod.test", "http://127.0.0.1:8480/?sleep_ms=6000"], {
      timeoutMs: 30_000,
    });
    await Bun.sleep(1500);

    await activateEverywhere([v2.backend, v2.frontend]);
    await hashdJson(b, ["alias", "set", `prod=${hashOf(v2.frontend)}`]);
    for (const h of hosts)
      await waitFor(`prod routes to v2 on ${h.name}`, async () =>
        (await route(h)).includes('"version": "2"'),
      );
    await Bun.sleep(1000);
    await hashdJson(c, ["rollback", "prod"]);
    for (const h of hosts)
      await waitFor(`prod back on v1 on ${h.name}`, async () => (await route(h)).includes('"version": "1"'));
    await Bun.sleep(1000);

    // a hold taken on v1's backend before the final switch keeps it (and only it) running
    console.log(
      `v1 ${hashOf(v1.frontend)} -> ${hashOf(v1.backend)}, v2 ${hashOf(v2.frontend)} -> ${hashOf(v2.backend)}`,
    );
    // a lease longer than the waits below: v1's frontend takes about 35 s to retire (its drain), and
    // up to a minute on a loaded machine; a hold that ran out first would let the backend go too
    const holdId = await takeHold(a, hashOf(v1.backend), 300);
    const heldAt = Date.now();
    await hashdJson(a, ["alias", "set", `prod=${hashOf(v2.frontend)}`]);
    for (const h of hosts)
      await waitFor(`prod on v2 again on ${h.name}`, async () => (await route(h)).includes('"version": "2"'));

    // v1's frontend retires everywhere; v1's backend waits for the hold
    for (const h of hosts)
      await waitFor(
        `v1 frontend retired on ${h.name}`,
        async () => (await state(h, hashOf(v1.frontend))) === "retired",
        180_000, // about 35 s here, mostly protocol timers (quiet periods, gossip rounds)
      );
    console.log(`v1 frontend retired on every host ${Date.now() - heldAt} ms after the hold was taken`);
    await Bun.sleep(4000);
    const kept = await events(a, hashOf(v1.backend));
    if ((await state(a, hashOf(v1.backend))) !== "draining")
      console.log(`v1 backend on a: ${kept.map((e) => `${e.kind}: ${e.message}`).join("\n  ")}`);
    expect(await state(a, hashOf(v1.backend))).toBe("draining");
    expect(kept.some((e) => e.kind === "kept" && e.message.includes("hold"))).toBe(true);
    await releaseHold(a, hashOf(v1.backend), holdId);
    for (const h of hosts)
      await waitFor(
        `v1 backend retired on ${h.name}`,
        async () => (await state(h, hashOf(v1.backend))) === "retired",
        180_000, // about 35 s here, mostly protocol timers (quiet periods, gossip rounds)
      );

    // top-down on every host: the frontend's retirement comes before its backend's
    for (const h of hosts) {
      const fe = (await events(h, hashOf(v1.frontend))).find((e) => e.kind === "retired");
      const be = (await events(h, hashOf(v1.backend))).find((e) => e.kind === "retired");
      expect(fe && be && fe.at < be.at).toBe(true);
      expect((await unitProps(h, `hashd-${hashOf(v1.backend)}.socket`, ["LoadState"])).LoadState).toBe(
        "not-found",
      );
      expect(
        (await h.exec(["test", "-e", `/nix/var/nix/gcroots/hashd/${hashOf(v1.backend)}`])).code,
      ).not.toBe(0);
      expect(await state(h, hashOf(v2.backend))).not.toBe("retired");
    }

    const longResult = await long;
    expect(longResult.stdout).toContain('"version": "1"');

    for (const h of hosts) await h.writeFile("/root/stop", "");
    const summaries = (
      await Promise.all(procs.map((p) => new Response(p.stdout as ReadableStream).text()))
    ).map((t) => JSON.parse(t) as LoadSummary);
    let total = 0;
    for (const s of summaries) {
      expect(s.errors).toEqual([]);
      expect(s.failed).toBe(0);
      total += s.ok;
      for (const body of Object.keys(s.tally)) {
        const r = JSON.parse(body) as { version: string; backendUrl: string; backend: { version: string } };
        expect(r.backend.version).toBe(r.version); // never a v2 frontend on a v1 backend, or the reverse
        expect(r.backendUrl).toBe(`http://${hashOf(r.version === "1" ? v1.backend : v2.backend)}.test/`);
      }
    }
    console.log(`hashd upgrade under load: ${total} requests on 3 hosts, 0 failed, every pair consistent`);
    expect(total).toBeGreaterThan(300);
  });

  test("the same upgrade done pit-stop (restart of one unit per service) fails requests", async () => {
    const a = hosts[0] as Host;
    // v1 and v2 of the same two programs, run as plain units on fixed ports: backend 9101, frontend 9100.
    const run = async (version: string) => {
      for (const [name, port, script] of [
        ["pit-backend", 9101, "backend.py"],
        ["pit-frontend", 9100, "frontend.py"],
      ] as const) {
        const path = version === "1" ? v1 : v2;
        const store = name === "pit-backend" ? path.backend : path.frontend;
        await a.run([
          "systemd-run",
          `--unit=${name}`,
          "--collect",
          "--property=Restart=no",
          `--setenv=PORT=${port}`,
          `--setenv=VERSION=${version}`,
          "--setenv=BACKEND_URL=http://127.0.0.1:9101/",
          "--setenv=HASHD_INGRESS=127.0.0.1:9101",
          "/usr/bin/python3",
          `${store}/app/${script}`,
        ]);
      }
      await waitFor(
        "pit-stop frontend up",
        async () => (await a.exec(["curl", "-sf", "http://127.0.0.1:9100/healthz"])).code === 0,
      );
    };
    await run("1");
    await a.writeFile("/root/pitload.ts", LOAD_GENERATOR_TS);
    const p = a.spawn(
      ["/usr/bin/bun", "/root/pitload.ts", "http://127.0.0.1:9100", "127.0.0.1", "4", "/root/pitstop"],
      {
        stdout: "pipe",
      },
    );
    await Bun.sleep(1500);
    // the pit stop: each service's unit is stopped and started again on the new version
    await a.run(["systemctl", "stop", "pit-backend", "pit-frontend"]);
    await run("2");
    await Bun.sleep(1500);
    await a.writeFile("/root/pitstop", "");
    const s = JSON.parse(await new Response(p.stdout as ReadableStream).text()) as LoadSummary;
    console.log(
      `pit-stop upgrade under load: ${s.ok} ok, ${s.failed} failed during ${s.failingMs} ms (${s.errors[0]?.slice(0, 120)})`,
    );
    expect(s.failed).toBeGreaterThan(0);
    await a.run(["systemctl", "stop", "pit-backend", "pit-frontend"]);
  });
});
