/**
 * The ingress against real socket-activated services: one sandbox host running the agent
 * (ingress on 127.0.0.1:8480, zone "test"), services built with nix inside the host.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { hashdJson, holdsApi, installAgent, unitProps, waitFor } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { serviceExpr, type TestService } from "./service-closures.ts";

setDefaultTimeout(180_000);

let sb: Sandbox;
let a: Host;
let fast: string; // a hash that is always ready
let sleepy: string; // a hash with idleStopSec = 1

const INGRESS = "http://127.0.0.1:8480";

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a"] });
  a = sb.host("a");
  await installAgent(a, { config: { zone: "test" } });
  fast = await activate({ name: "fast" });
  sleepy = await activate({ name: "sleepy", idleStopSec: 1 });
}, 180_000);

afterAll(async () => {
  await sb?.destroy();
});

async function activate(s: TestService): Promise<string> {
  const path = await a.nixBuild(serviceExpr(s));
  await hashdJson(a, ["activate", path, "--wait"]);
  return path.slice(11, 43);
}

/** curl inside the host; returns status, headers (lower case) and body. */
async function curl(args: string[], timeoutSec = 60) {
  const r = await a.exec(["curl", "-sS", "-i", "--max-time", String(timeoutSec), ...args], {
    timeoutMs: (timeoutSec + 10) * 1000,
  });
  let rest = r.stdout;
  let head = "";
  // Skip interim responses (100 Continue) to the final head.
  do {
    const end = rest.indexOf("\r\n\r\n");
    head = end < 0 ? rest : rest.slice(0, end);
    rest = end < 0 ? "" : rest.slice(end + 4);
  } while (/^HTTP\/1\.1 1\d\d/.test(head));
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0);
  return { status, headers: head.toLowerCase(), body: rest, code: r.code, stderr: r.stderr };
}

async function metrics(): Promise<string> {
  return a.run(["curl", "-sS", "--unix-socket", "/run/hashd/control.sock", "http://agent/metrics"]);
}

function metric(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("ingress on a real host", () => {
  test("a hash answers at http://<hash>.<zone>/ and at /h/<hash>/, and says which hash served it", async () => {
    const byHost = await curl(["-H", `Host: ${fast}.test`, `${INGRESS}/`]);
    expect(byHost.status).toBe(200);
    expect(byHost.body).toStartWith(`fast 1 ${fast}`);
    expect(byHost.headers).toContain(`x-hashd-hash: ${fast}`);
    const byPath = await curl([`${INGRESS}/h/${fast}/echo-headers`]);
    expect(byPath.status).toBe(200);
    expect(byPath.body).toContain(`x-forwarded-prefix: /h/${fast}`);
    expect(byPath.body).toContain("x-forwarded-for: 127.0.0.1");
    expect(byPath.body).toContain("x-forwarded-proto: http");
  });

  test("aliases route to the hash they point at", async () => {
    await hashdJson(a, ["alias", "set", `web=${fast}`]);
    const r = await curl(["-H", "Host: web.test", `${INGRESS}/`]);
    expect(r.status).toBe(200);
    expect(r.body).toStartWith(`fast 1 ${fast}`);
  });

  test("unknown, malformed and hostile requests get 4xx and the ingress keeps serving", async () => {
    const unknown = "0".repeat(32);
    const cases: [string[], number][] = [
      [["-H", `Host: ${unknown}.test`, `${INGRESS}/`], 404],
      [[`${INGRESS}/h/${unknown}/`], 404],
      [["-H", `Host: ${fast.slice(1)}.test`, `${INGRESS}/`], 404], // 31 characters: an unknown alias
      [["-H", `Host: ${"e".repeat(32)}.test`, `${INGRESS}/`], 400], // 32 characters, not nix-base32
      [[`${INGRESS}/h/${"e".repeat(32)}/`], 400],
      [[`${INGRESS}/h/${fast}x/`], 400],
      [["-H", "Host: bad host.test", `${INGRESS}/`], 400],
      [["-H", "Host: example.org", `${INGRESS}/`], 421],
      [["-H", `X-Big: ${"a".repeat(70_000)}`, "-H", `Host: ${fast}.test`, `${INGRESS}/`], 431],
    ];
    for (const [args, status] of cases) {
      const r = await curl(args);
      expect({ args: args.map((x) => x.slice(0, 60)), status: r.status }).toEqual({
        args: args.map((x) => x.slice(0, 60)),
        status,
      });
    }
    const traversal = await curl(["--path-as-is", `${INGRESS}/h/${fast}/../../etc/passwd`]);
    expect(traversal.status).toBeGreaterThanOrEqual(400);
    expect(traversal.status).toBeLessThan(500);
    expect((await curl(["-H", `Host: ${fast}.test`, `${INGRESS}/`])).status).toBe(200);
  });

  test("bodies stream both ways without the agent holding them", async () => {
    const rssBefore = await agentRssMiB();
    const size = 300 * 1024 * 1024;
    await a.run(["dd", "if=/dev/zero", "of=/root/big", "bs=1M", "count=300", "status=none"]);
    const up = await curl(
      ["-H", `Host: ${fast}.test`, "--data-binary", "@/root/big", `${INGRESS}/upload`],
      120,
    );
    expect(up.body.trim()).toBe(`received ${size}`);
    const down = await a.exec(
      ["sh", "-c", `curl -sS -H 'Host: ${fast}.test' ${INGRESS}/download/${size} | wc -c`],
      { timeoutMs: 120_000 },
    );
    expect(Number(down.stdout.trim())).toBe(size);
    const rssAfter = await agentRssMiB();
    expect(rssAfter - rssBefore).toBeLessThan(100);
  });

  test("WebSocket upgrades pass through", async () => {
    await a.writeFile(
      "/root/ws.ts",
      `const ws = new WebSocket("ws://127.0.0.1:8480/h/${fast}/ws");
       const got: string[] = [];
       ws.onopen = () => { ws.send("one"); ws.send("two"); };
       ws.onmessage = (e) => { got.push(String(e.data)); if (got.length === 2) { console.log(got.join(",")); ws.close(); process.exit(0); } };
       ws.onerror = (e) => { console.error("ws error", e); process.exit(2); };
       setTimeout(() => process.exit(3), 10000);`,
    );
    const r = await a.exec(["/usr/bin/bun", "/root/ws.ts"], { timeoutMs: 20_000 });
    expect(r.stdout.trim()).toBe("echo: one,echo: two");
  });

  test("in-flight requests are counted per hash until their last byte", async () => {
    const slow = Array.from({ length: 4 }, () => curl(["-H", `Host: ${fast}.test`, `${INGRESS}/sleep/3`]));
    const seen = await waitFor("4 in flight", async () => {
      const n = metric(await metrics(), "hashd_ingress_hash_in_flight", `hash="${fast}"`);
      return n >= 4 ? n : undefined;
    });
    expect(seen).toBe(4);
    for (const r of await Promise.all(slow)) expect(r.status).toBe(200);
    expect(metric(await metrics(), "hashd_ingress_hash_in_flight", `hash="${fast}"`)).toBe(0);
  });

  test("a client that disconnects releases its in-flight count", async () => {
    await curl(["-H", `Host: ${fast}.test`, `${INGRESS}/sleep/5`], 1);
    await waitFor("in-flight back to 0", async () => {
      return metric(await metrics(), "hashd_ingress_hash_in_flight", `hash="${fast}"`) === 0;
    });
  });

  test("holds: a service takes a lease on its own hash with its token, renews it, and it expires by itself", async () => {
    // the service itself, through its bind-mounted token file ($HASHD_HOLD_TOKEN_FILE)
    const taken = await curl(["-H", `Host: ${sleepy}.test`, `${INGRESS}/hold/2`]);
    expect(taken.body).toStartWith("201 ");
    const hold = JSON.parse(taken.body.slice(4)) as { id: string; hash: string; expiresAt: string };
    expect(hold.hash).toBe(sleepy);
    expect(metric(await metrics(), "hashd_holds", `hash="${sleepy}"`)).toBe(1);
    // a held hash is not scaled to zero although nothing is in flight (idleStopSec is 1)
    await Bun.sleep(1500);
    const renewal = await holdsApi(a, sleepy, "POST", `/v1/holds/${hold.id}/renew`);
    expect(renewal.status).toBe(200);
    const renewed = JSON.parse(renewal.body) as { expiresAt: string };
    expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(Date.parse(hold.expiresAt));
    await Bun.sleep(1500);
    expect((await unitProps(a, `hashd-${sleepy}.service`, ["ActiveState"])).ActiveState).toBe("active");
    await waitFor(
      "the lease expired",
      async () => metric(await metrics(), "hashd_holds", `hash="${sleepy}"`) === 0,
    );
  });

  test("holds: a service reads only its own token, and another hash's token holds nothing", async () => {
    const read = async (path: string) =>
      (await curl(["-H", `Host: ${fast}.test`, `${INGRESS}/read${path}`])).body;
    const fastToken = (await a.run(["cat", `/run/hashd/hold-tokens/${fast}`])).trim();
    expect(fastToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await read("/run/hashd/hold-token")).toBe(fastToken);
    expect(await read(`/run/hashd/hold-tokens/${sleepy}`)).toBe("error: PermissionError\n");
    // on the host the bind mount's target is an empty file, the tokens a root-only directory
    expect(await a.run(["cat", "/run/hashd/hold-token"])).toBe("");
    expect((await a.run(["stat", "-c", "%a %U", "/run/hashd/hold-tokens"])).trim()).toBe("700 root");
    // fast's service asks for a hold on sleepy's hash
    const attempt = await holdsApi(a, fast, "POST", "/v1/holds", { hash: sleepy, ttlSec: 60 });
    expect(attempt.status).toBe(403);
    expect(metric(await metrics(), "hashd_holds", `hash="${sleepy}"`)).toBe(0);
  });

  test("scale to zero: an idle hash stops, its socket stays, and the next request wakes it", async () => {
    await waitFor("service stopped after idleStopSec", async () => {
      const p = await unitProps(a, `hashd-${sleepy}.service`, ["ActiveState"]);
      return p.ActiveState === "inactive";
    });
    expect((await unitProps(a, `hashd-${sleepy}.socket`, ["ActiveState"])).ActiveState).toBe("active");
    const shown = await hashdJson<{ deployment: { state: string } }>(a, ["show", sleepy]);
    expect(shown.deployment.state).toBe("idle");
    const r = await curl(["-H", `Host: ${sleepy}.test`, `${INGRESS}/`]);
    expect(r.status).toBe(200);
    expect(r.body).toStartWith(`sleepy 1 ${sleepy}`);
  });

  test("under steady load, repeated idle stops and wake-ups fail no request", async () => {
    // Bursts separated by pauses around the idle time, so stops race with new requests.
    await a.writeFile(
      "/root/load.ts",
      `let ok = 0, failed = 0; const errors: string[] = [];
       const deadline = Date.now() + 30000;
       while (Date.now() < deadline) {
         await Promise.all(Array.from({ length: 8 }, async () => {
           try {
             const r = await fetch("http://127.0.0.1:8480/", { headers: { host: "${sleepy}.test" } });
             const t = await r.text();
             if (r.status === 200 && t.startsWith("sleepy")) ok++; else { failed++; errors.push(r.status + " " + t.slice(0, 80)); }
           } catch (e) { failed++; errors.push(String(e)); }
         }));
         await Bun.sleep(1000 + Math.random() * 2000); // idleStopSec 1, scaler tick 1 s: stops race bursts
       }
       console.log(JSON.stringify({ ok, failed, errors: errors.slice(0, 5) }));`,
    );
    const stopsBefore = metric(await metrics(), "hashd_idle_stops_total");
    const r = await a.exec(["/usr/bin/bun", "/root/load.ts"], { timeoutMs: 90_000 });
    const result = JSON.parse(r.stdout) as { ok: number; failed: number; errors: string[] };
    const stops = metric(await metrics(), "hashd_idle_stops_total") - stopsBefore;
    console.log(`load: ${result.ok} ok, ${result.failed} failed, ${stops} idle stops during the run`);
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(50);
    expect(stops).toBeGreaterThanOrEqual(2);
    const socket = await unitProps(a, `hashd-${sleepy}.socket`, ["ActiveState"]);
    expect(socket.ActiveState).toBe("active");
  });

  test("a hung service does not block requests to other hashes", async () => {
    const hung = curl(["-H", `Host: ${fast}.test`, `${INGRESS}/sleep/4`]);
    const t0 = performance.now();
    const other = await curl(["-H", `Host: ${sleepy}.test`, `${INGRESS}/`]);
    expect(other.status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(3500);
    expect((await hung).status).toBe(200);
  });
});

async function agentRssMiB(): Promise<number> {
  const pid = (await a.run(["systemctl", "show", "--property=MainPID", "--value", "hashd.service"])).trim();
  return Number(/VmRSS:\s+(\d+)/.exec(await a.readFile(`/proc/${pid}/status`))?.[1]) / 1024;
}
