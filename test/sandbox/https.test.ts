/**
 * HTTPS on real hosts: a's agent has a TLS listener (port 8443) with a wildcard certificate for
 * *.hashd.test from a CA made at test time; b is a client across the bridge, with the CA and a's address
 * for the names in /etc/hosts. A hash URL and an alias URL over TLS, a WebSocket over TLS, the
 * redirect from plain HTTP (b is redirected, a's own processes are not), and a certificate swapped
 * on disk under load: no request fails, and a new handshake gets the new certificate with no
 * restart. Host a sets net.ipv4.tcp_migrate_req = 1 in its namespace, as the NixOS module does.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { tempDir } from "../support/ingress/servers.ts";
import { type TestPki, testPki } from "../support/ingress/tls-certs.ts";
import { hashdJson, installAgent, waitFor } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { LOAD_GENERATOR_TS, type LoadSummary } from "./load-generator.ts";
import { serviceExpr } from "./service-closures.ts";

setDefaultTimeout(180_000);

/** two labels: a wildcard right under one label (*.test) is refused by OpenSSL's host check */
const ZONE = "hashd.test";
const TLS_DIR = "/etc/hashd/tls";
const CA = "/root/ca.pem";
let sb: Sandbox | undefined;
let a: Host;
let b: Host;
let hash = "";
const local = tempDir("hashd-https-pki-");
let pki: TestPki;

const hashOf = (path: string) => path.slice("/nix/store/".length, "/nix/store/".length + 32);

/** Puts a pair in place on a the way ACME clients do: each file written aside, then renamed. */
async function installPair(name: string): Promise<void> {
  const pair = { cert: `${local.path}/${name}.pem`, key: `${local.path}/${name}.key` };
  await a.writeFile(`${TLS_DIR}/key.pem.new`, readFileSync(pair.key), 0o600);
  await a.writeFile(`${TLS_DIR}/fullchain.pem.new`, readFileSync(pair.cert), 0o644);
  await a.run(["mv", `${TLS_DIR}/key.pem.new`, `${TLS_DIR}/key.pem`]);
  await a.run(["mv", `${TLS_DIR}/fullchain.pem.new`, `${TLS_DIR}/fullchain.pem`]);
}

/** The subject of the certificate a new handshake from b gets. */
async function servedSubject(): Promise<string> {
  const r = await b.exec(
    [
      "sh",
      "-c",
      `openssl s_client -connect web.hashd.test:8443 -servername web.hashd.test -CAfile ${CA} </dev/null 2>&1`,
    ],
    { timeoutMs: 20_000 },
  );
  return /subject=([^\n]*)/.exec(r.stdout)?.[1] ?? `(none) ${r.stdout.slice(0, 300)}`;
}

async function curl(from: Host, args: string[]): Promise<string> {
  const r = await from.exec(["curl", "-sS", "--max-time", "30", "--cacert", CA, ...args], {
    timeoutMs: 40_000,
  });
  if (r.code !== 0) throw new Error(`curl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  pki = testPki(local.path);
  pki.wildcard("one", ZONE);
  pki.wildcard("two", ZONE, "rsa");
  sb = await Sandbox.create({ hosts: ["a", "b"] });
  [a, b] = [sb.host("a"), sb.host("b")];
  await a.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/tcp_migrate_req"]);
  await a.run(["mkdir", "-p", TLS_DIR]);
  await installPair("one");
  for (const h of [a, b]) await h.writeFile(CA, readFileSync(pki.caFile));
  await installAgent(a, {
    config: {
      zone: ZONE,
      ingress: { address: "0.0.0.0", port: 8480 },
      tls: {
        certificateFile: `${TLS_DIR}/fullchain.pem`,
        keyFile: `${TLS_DIR}/key.pem`,
        port: 8443,
        redirectHttp: true,
        checkSec: 1,
      },
    },
  });
  const path = await a.nixBuild(serviceExpr({ name: "web" }));
  await hashdJson(a, ["activate", path, "--wait"]);
  hash = hashOf(path);
  await hashdJson(a, ["alias", "set", `web=${hash}`]);
  await b.run(["sh", "-c", `echo "${a.ip} web.hashd.test ${hash}.hashd.test hashd.test" >> /etc/hosts`]);
  await a.run(["sh", "-c", `echo "127.0.0.1 web.hashd.test ${hash}.hashd.test" >> /etc/hosts`]);
}, 600_000);

afterAll(async () => {
  await sb?.destroy();
  local.remove();
});

describe("https", () => {
  test("a hash URL and an alias URL over TLS, verified by the test CA, HTTP/1.1", async () => {
    for (const url of [
      `https://${hash}.hashd.test:8443/`,
      "https://web.hashd.test:8443/",
      `https://hashd.test:8443/h/${hash}/`,
    ]) {
      const out = await curl(b, [
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version} %{ssl_verify_result}",
        url,
      ]);
      expect({ url, out }).toEqual({ url, out: "200 1.1 0" });
    }
    expect(await servedSubject()).toContain("one.hashd.test");
  });

  test("TLS 1.1 is refused", async () => {
    const r = await b.exec(
      [
        "sh",
        "-c",
        "openssl s_client -tls1_1 -connect web.hashd.test:8443 -servername web.hashd.test </dev/null 2>&1",
      ],
      { timeoutMs: 20_000 },
    );
    expect(r.stdout).toMatch(/alert protocol version|no protocols available|unsupported protocol/i);
  });

  test("a WebSocket over TLS", async () => {
    await b.writeFile(
      "/root/ws.ts",
      `const ws = new WebSocket("wss://web.hashd.test:8443/ws");
       const t = setTimeout(() => { console.log("timeout"); process.exit(1); }, 20000);
       ws.onopen = () => ws.send("over tls");
       ws.onmessage = (e) => { console.log("got " + e.data); clearTimeout(t); ws.close(); process.exit(0); };
       ws.onerror = (e) => { console.log("error " + (e.message ?? e)); process.exit(1); };`,
    );
    const r = await b.exec(["/usr/bin/bun", "/root/ws.ts"], {
      env: { NODE_EXTRA_CA_CERTS: CA },
      timeoutMs: 30_000,
    });
    expect(r.stdout.trim()).toBe("got echo: over tls");
  });

  test("plain HTTP: b is redirected to the same URL over HTTPS, a's own processes are not", async () => {
    const fromB = await curl(b, [
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{redirect_url}",
      "http://web.hashd.test:8480/x?y=1",
    ]);
    expect(fromB).toBe("308 https://web.hashd.test:8443/x?y=1");
    const fromA = await curl(a, [
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-H",
      "host: web.hashd.test",
      "http://127.0.0.1:8480/",
    ]);
    expect(fromA).toBe("200");
    // following the redirect ends at the service
    expect(
      await curl(b, ["-L", "-o", "/dev/null", "-w", "%{http_code}", "http://web.hashd.test:8480/"]),
    ).toBe("200");
  });

  test("a certificate swapped on disk under load: no request fails, new handshakes get the new one", async () => {
    await b.writeFile("/root/load.ts", LOAD_GENERATOR_TS);
    await b.run(["rm", "-f", "/root/stop-load"]);
    // keep-alive requests (fetch pools connections) ...
    const load = b.spawn(
      [
        "/usr/bin/bun",
        "/root/load.ts",
        "https://web.hashd.test:8443",
        "web.hashd.test",
        "4",
        "/root/stop-load",
      ],
      {
        stdout: "pipe",
        env: { NODE_EXTRA_CA_CERTS: CA },
      },
    );
    // ... and a new connection, so a new handshake, for every request
    await b.writeFile(
      "/root/fresh.sh",
      `ok=0; bad=0
       while [ ! -e /root/stop-load ]; do
         code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert ${CA} https://web.hashd.test:8443/) || true
         if [ "$code" = 200 ]; then ok=$((ok+1)); else bad=$((bad+1)); echo "failed: $code" >&2; fi
       done
       echo "$ok $bad"`,
    );
    const fresh = b.spawn(["sh", "/root/fresh.sh"], { stdout: "pipe" });
    await Bun.sleep(2000);
    await installPair("two");
    await waitFor("a new handshake to get the new certificate", async () =>
      (await servedSubject()).includes("two.hashd.test") ? true : undefined,
    );
    await Bun.sleep(2000);
    await installPair("one");
    await waitFor("and back", async () =>
      (await servedSubject()).includes("one.hashd.test") ? true : undefined,
    );
    await Bun.sleep(2000);
    await b.writeFile("/root/stop-load", "");
    const summary = JSON.parse(await new Response(load.stdout as ReadableStream).text()) as LoadSummary;
    const [ok, bad] = (await new Response(fresh.stdout as ReadableStream).text())
      .trim()
      .split(" ")
      .map(Number);
    console.log(
      `swap under load: keep-alive ${summary.ok} ok, ${summary.failed} failed; new connections ${ok} ok, ${bad} failed`,
    );
    expect(summary.errors).toEqual([]);
    expect(summary.failed).toBe(0);
    expect(bad).toBe(0);
    expect(summary.ok).toBeGreaterThan(50);
    expect(ok).toBeGreaterThan(10);
    // the agent was not restarted
    const restarts = await a.run(["systemctl", "show", "-p", "NRestarts", "--value", "hashd.service"]);
    expect(restarts.trim()).toBe("0");
    const log = await a.run(["journalctl", "-u", "hashd.service", "--no-pager", "-o", "cat"]);
    expect(log).toContain("tls certificate reloaded");
  });

  test("a broken certificate on disk: the old one stays, and the log says why", async () => {
    await a.run([
      "sh",
      "-c",
      `echo garbage > ${TLS_DIR}/fullchain.pem.new && mv ${TLS_DIR}/fullchain.pem.new ${TLS_DIR}/fullchain.pem`,
    ]);
    await waitFor("the refusal in the log", async () =>
      (await a.run(["journalctl", "-u", "hashd.service", "--no-pager", "-o", "cat"])).includes(
        "reload refused",
      )
        ? true
        : undefined,
    );
    expect(await servedSubject()).toContain("one.hashd.test");
    expect(await curl(b, ["-o", "/dev/null", "-w", "%{http_code}", "https://web.hashd.test:8443/"])).toBe(
      "200",
    );
  });

  test("a missing certificate file at start: the agent does not start, and says which file", async () => {
    const config = JSON.parse(await a.readFile("/etc/hashd/config.json"));
    config.tls.certificateFile = `${TLS_DIR}/missing.pem`;
    await a.writeFile("/etc/hashd/config.json", JSON.stringify(config));
    const since = (await a.run(["date", "+%Y-%m-%d %H:%M:%S"])).trim();
    await a.exec(["systemctl", "restart", "hashd.service"], { timeoutMs: 60_000 });
    const journal = await waitFor("the refusal in the journal", async () => {
      const log = await a.run([
        "journalctl",
        "-u",
        "hashd.service",
        "--since",
        since,
        "--no-pager",
        "-o",
        "cat",
      ]);
      return log.includes(`${TLS_DIR}/missing.pem cannot be read`) ? log : undefined;
    });
    expect(journal).toContain("tls.certificateFile");
    const active = await a.exec(["systemctl", "is-active", "hashd.service"]);
    expect(active.stdout.trim()).not.toBe("active");
  });
});
