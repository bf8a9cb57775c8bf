/**
 * Private previews and 410 Gone on real hosts: two agents in one gossip cluster (installCluster:
 * ingress on 0.0.0.0:8480, zone "test"), the same bypass token file on both. The example chain
 * (nix/example: a frontend that calls its backend's hash URL through HASHD_INGRESS, as
 * lib.mkHashUrl makes it) and a lone service run on a only. Requests "from b" cross the bridge to
 * a's ingress (a client elsewhere); requests on a host's own loopback are its services' way in.
 * The tests run in order and share the hosts: the cluster default (aliased), the token by header
 * and by cookie, token mode, public mode, then v1 retires and both members answer 410.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import {
  EXAMPLE_CREDENTIALS,
  hashd,
  hashdJson,
  installCluster,
  installNixLib,
  waitFor,
  writeExampleSecrets,
} from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { serviceExpr } from "./service-closures.ts";

setDefaultTimeout(180_000);

const TOKEN = randomBytes(32).toString("hex");
const TOKEN_FILE = "/etc/hashd/bypass-token";
const UNKNOWN = "1".repeat(32);
let sb: Sandbox | undefined;
let a: Host;
let b: Host;
/** hashes; `paths` has their store paths */
const v1 = { frontend: "", backend: "" };
const v2 = { frontend: "", backend: "" };
const paths = new Map<string, string>();
let lone = "";
const hashOf = (path: string) => path.slice("/nix/store/".length, "/nix/store/".length + 32);

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a", "b"] });
  [a, b] = [sb.host("a"), sb.host("b")];
  for (const h of [a, b]) {
    await writeExampleSecrets(h);
    await h.writeFile(TOKEN_FILE, `${TOKEN}\n`, 0o600);
  }
  // no access.hashUrls: a cluster's default (aliased)
  await installCluster([a, b], {
    config: { quietSec: 2, credentials: EXAMPLE_CREDENTIALS, access: { bypassTokenFile: TOKEN_FILE } },
  });
  const example = `${await installNixLib(a)}/example`;
  for (const [v, out] of [
    ["1", v1],
    ["2", v2],
  ] as const) {
    for (const part of ["frontend", "backend"] as const) {
      const path = await a.nixBuild(`(import ${example} { version = "${v}"; zone = "test"; }).${part}`);
      out[part] = hashOf(path);
      paths.set(out[part], path);
    }
  }
  lone = await a.nixBuild(serviceExpr({ name: "lone" }));
  for (const h of [v1.backend, v1.frontend])
    await hashdJson(a, ["activate", paths.get(h) as string, "--wait"]);
  await hashdJson(a, ["activate", lone, "--wait"]);
  lone = hashOf(lone);
  await hashdJson(a, ["alias", "set", `prod=${v1.frontend}`]);
  await waitFor(
    "b to see a's hashes",
    async () => (await ask(b, "local", `${v1.backend}.test`)).status === 200,
  );
}, 600_000);

afterAll(async () => {
  await sb?.destroy();
});

interface Answer {
  status: number;
  head: string;
  body: string;
}

/** GET from `from` to `to`'s ingress ("local": from's own, over loopback), with a Host and headers. */
async function ask(
  from: Host,
  to: Host | "local",
  host: string,
  path = "/",
  headers: string[] = [],
): Promise<Answer> {
  const url = `http://${to === "local" ? "127.0.0.1" : to.ip}:8480${path}`;
  const r = await from.exec(
    [
      "curl",
      "-sS",
      "-i",
      "--max-time",
      "30",
      "-H",
      `Host: ${host}`,
      ...headers.flatMap((h) => ["-H", h]),
      url,
    ],
    { timeoutMs: 40_000 },
  );
  if (r.code !== 0) throw new Error(`curl ${url} (Host: ${host}) failed: ${r.stderr}`);
  const split = r.stdout.indexOf("\r\n\r\n");
  const head = r.stdout.slice(0, split);
  return { status: Number(head.slice(9, 12)), head, body: r.stdout.slice(split + 4) };
}

/** What a client without access sees must be what it sees for a hash no member knows. */
async function expectUnknown(answer: Answer, hash: string, from: Host, to: Host | "local"): Promise<void> {
  const unknown = await ask(from, to, `${UNKNOWN}.test`);
  expect(answer.status).toBe(404);
  expect(answer.body.replaceAll(hash, "H")).toBe(unknown.body.replaceAll(UNKNOWN, "H"));
  expect(answer.head.replaceAll(hash, "H")).toBe(unknown.head.replaceAll(UNKNOWN, "H"));
}

async function setMode(h: Host, hashUrls: string): Promise<void> {
  const config = JSON.parse(await h.readFile("/etc/hashd/config.json"));
  config.access = { ...config.access, hashUrls };
  await h.writeFile("/etc/hashd/config.json", JSON.stringify(config, null, 2));
  await h.run(["systemctl", "restart", "hashd.service"]); // Type=notify: back once it serves
}

const frontendSays = (r: Answer) => JSON.parse(r.body) as { version: string; backendStatus: number };

describe("a cluster's default: aliased", () => {
  test("an aliased hash and alias URLs answer a client elsewhere; another hash is an unknown hash's 404", async () => {
    expect((await ask(b, a, `${v1.frontend}.test`)).status).toBe(200);
    const prod = await ask(b, a, "prod.test");
    expect(prod.status).toBe(200);
    // the frontend called its (unaliased) backend's hash URL through the local ingress
    expect(frontendSays(prod)).toMatchObject({ version: "1", backendStatus: 200 });
    await expectUnknown(await ask(b, a, `${v1.backend}.test`), v1.backend, b, a);
    // the /h/<hash>/ form on any Host (here a's IP) follows the same rule
    expect((await ask(b, a, a.ip, `/h/${v1.frontend}/`)).status).toBe(200);
    const byPath = await ask(b, a, a.ip, `/h/${v1.backend}/`);
    expect(byPath.status).toBe(404);
    expect(byPath.body).toBe(`hash ${v1.backend} is not live on any member\n`);
  });

  test("a process on the host passes; so does a member's proven hop, not a client of another host", async () => {
    expect((await ask(a, "local", `${v1.backend}.test`)).status).toBe(200);
    // b's own loopback: b lets it through and forwards it to a with a hop proof
    expect((await ask(b, "local", `${v1.backend}.test`)).status).toBe(200);
    // a is not local to b: refused there, although b would forward it to a
    await expectUnknown(await ask(a, b, `${v1.backend}.test`), v1.backend, a, b);
    // a client that writes hop headers itself is not a member
    const forged = await ask(b, a, `${v1.backend}.test`, "/", [
      "x-hashd-hop: b",
      `x-hashd-hash: ${v1.backend}`,
      "x-hashd-hop-auth: 1800000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ]);
    await expectUnknown(forged, v1.backend, b, a);
  });
});

describe("the bypass token", () => {
  test("by header: opens any hash URL; a wrong one, or another case, is the 404", async () => {
    expect((await ask(b, a, `${v1.backend}.test`, "/", [`x-hashd-bypass: ${TOKEN}`])).status).toBe(200);
    for (const wrong of [TOKEN.toUpperCase(), TOKEN.slice(1), `${TOKEN}0`])
      await expectUnknown(await ask(b, a, `${lone}.test`, "/", [`x-hashd-bypass: ${wrong}`]), lone, b, a);
  });

  test("by ?hashd-bypass= once: a redirect without it and a cookie for that hash; the service never sees either", async () => {
    const r = await ask(b, a, `${lone}.test`, `/echo-headers?hashd-bypass=${TOKEN}`);
    expect(r.status).toBe(307);
    expect(r.head).toContain("\r\nlocation: /echo-headers\r\n");
    const cookie =
      /\r\nset-cookie: (hashd-bypass=[^;]+); Path=\/; Max-Age=604800; HttpOnly; SameSite=Lax(\r\n|$)/.exec(
        r.head,
      )?.[1];
    expect(cookie).toBeDefined();
    expect(r.head + r.body).not.toContain(TOKEN);
    const seen = await ask(b, a, `${lone}.test`, "/echo-headers", [`Cookie: theme=dark; ${cookie}`]);
    expect(seen.status).toBe(200);
    expect(seen.body).toContain("cookie: theme=dark\n");
    expect(seen.body).not.toContain("hashd-bypass");
    const withHeader = await ask(b, a, `${lone}.test`, "/echo-headers", [`x-hashd-bypass: ${TOKEN}`]);
    expect(withHeader.body).not.toContain(TOKEN);
    expect(withHeader.body).not.toContain("x-hashd-bypass");
    // the cookie opens that hash only
    await expectUnknown(await ask(b, a, `${v1.backend}.test`, "/", [`Cookie: ${cookie}`]), v1.backend, b, a);
    await expectUnknown(
      await ask(b, a, `${lone}.test`, "/", ["Cookie: hashd-bypass=v1.9999999999.x"]),
      lone,
      b,
      a,
    );
  });
});

describe("token and public modes", () => {
  test("token: only alias URLs answer without it, and the chain behind prod still works", async () => {
    await setMode(a, "token");
    await expectUnknown(await ask(b, a, `${v1.frontend}.test`), v1.frontend, b, a);
    const prod = await ask(b, a, "prod.test");
    expect(prod.status).toBe(200);
    expect(frontendSays(prod)).toMatchObject({ version: "1", backendStatus: 200 });
    expect((await ask(b, a, `${v1.frontend}.test`, "/", [`x-hashd-bypass: ${TOKEN}`])).status).toBe(200);
  });

  test("public: every hash URL answers", async () => {
    await setMode(a, "public");
    expect((await ask(b, a, `${v1.backend}.test`)).status).toBe(200);
    expect((await ask(b, a, `${lone}.test`)).status).toBe(200);
  });
});

describe("410 Gone", () => {
  test("v1 retires on a: a answers 410 with where prod points now, JSON on request; an unknown hash is 404", async () => {
    for (const h of [v2.backend, v2.frontend])
      await hashdJson(a, ["activate", paths.get(h) as string, "--wait"]);
    await hashdJson(a, ["alias", "set", `prod=${v2.frontend}`]);
    for (const hash of [v1.frontend, v1.backend])
      await waitFor(
        `${hash} retired on a`,
        async () =>
          (await hashdJson<{ deployment: { state: string } }>(a, ["show", hash])).deployment.state ===
          "retired",
        150_000,
      );
    const text = await ask(b, a, `${v1.frontend}.test`); // a is public now
    expect(text.status).toBe(410);
    expect(text.body).toMatch(new RegExp(`^hash ${v1.frontend} was retired at \\d{4}-\\d\\d-\\d\\dT`));
    expect(text.body).toContain(
      `alias prod pointed at it; http://prod.test/ is now http://${v2.frontend}.test/\n`,
    );
    const json = await ask(b, a, a.ip, `/h/${v1.frontend}/`, ["Accept: application/json"]);
    expect(json.status).toBe(410);
    expect(JSON.parse(json.body)).toMatchObject({
      error: "gone",
      hash: v1.frontend,
      reason: "retired",
      aliases: [{ name: "prod", hash: v2.frontend }],
    });
    expect((await ask(b, a, `${UNKNOWN}.test`)).status).toBe(404);
  });

  test("b, which never ran v1, answers 410 too; without access it shows nothing", async () => {
    await waitFor(
      "b to answer 410",
      async () => (await ask(b, "local", `${v1.backend}.test`)).status === 410,
    );
    const front = await ask(b, "local", `${v1.frontend}.test`);
    expect(front.status).toBe(410);
    expect(front.body).toContain(`http://prod.test/ is now http://${v2.frontend}.test/`);
    expect((await ask(b, "local", `${UNKNOWN}.test`)).status).toBe(404);
    // b is aliased (the default): a client elsewhere without the token sees an unknown hash
    await expectUnknown(await ask(a, b, `${v1.frontend}.test`), v1.frontend, a, b);
    expect((await ask(a, b, `${v1.frontend}.test`, "/", [`x-hashd-bypass: ${TOKEN}`])).status).toBe(410);
  });

  test("b remembers: with a's agent stopped (no report) and b restarted, still 410", async () => {
    await a.run(["systemctl", "stop", "hashd.service"]);
    try {
      await b.run(["systemctl", "restart", "hashd.service"]);
      const r = await ask(b, "local", `${v1.frontend}.test`);
      expect(r.status).toBe(410);
      expect(r.body).toContain(`http://prod.test/ is now http://${v2.frontend}.test/`);
    } finally {
      await a.run(["systemctl", "start", "hashd.service"]);
    }
    expect((await hashd(a, ["list"])).code).toBe(0);
  });
});
