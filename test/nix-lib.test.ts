/**
 * The Nix side with the real nix (Debian's nix-bin 2.8), never the machine's own /nix store:
 * - evaluation runs with `--store dummy://`, which computes store paths but cannot add anything;
 * - builds run in a sandbox host's private store (test/sandbox/harness.ts).
 * Both files of the contract are checked together: the manifest JSON that nix/lib.nix writes is
 * parsed with the agent's own zod schema (src/model/manifest.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MANIFEST_RELATIVE_PATH, manifestSchema, parseManifestText } from "../src/model/manifest.ts";
import { nixEvalFailure, nixEvalJson, nixInstantiate as runNixInstantiate } from "./nix-eval.ts";
import { installNixLib } from "./sandbox/agent-host.ts";
import { type Host, Sandbox } from "./sandbox/harness.ts";

const ROOT = path.resolve(import.meta.dir, "..");
const LIB = path.join(ROOT, "nix/lib.nix");
const EXAMPLE = path.join(ROOT, "nix/example");
const AGENT_UNIT = path.join(ROOT, "nix/agent-unit.nix");
const HASH = /^[0-9a-df-np-sv-z]{32}$/;

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "hashd-nix-lib-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const nixInstantiate = (args: string[]) => runNixInstantiate(args, scratch);

/** Evaluates `expr` (with `hashd` = nix/lib.nix in scope) to JSON in a store that stores nothing. */
const nixEval = (expr: string): unknown => nixEvalJson(withLib(expr), scratch);

/** Evaluates `expr`, which must fail; returns the error text. */
const nixEvalError = (expr: string): string => nixEvalFailure(withLib(expr), scratch);

function withLib(expr: string): string {
  return `let
    hashd = import ${LIB} { };
    fake = name: builtins.derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; };
    svc = args: hashd.mkService ({ system = "x86_64-linux"; } // args);
  in ${expr}`;
}

const urlHash = (p: string) => p.slice("/nix/store/".length, "/nix/store/".length + 32);

describe("hashOf and mkHashUrl", () => {
  test("the URL is http://<store hash>.<zone>/ and keeps the service's string context", () => {
    const r = nixEval(`let b = fake "backend"; url = hashd.mkHashUrl b; in {
      inherit url;
      path = b.outPath;
      drv = b.drvPath;
      hash = hashd.hashOf b;
      context = builtins.attrNames (builtins.getContext url);
      hashContext = builtins.attrNames (builtins.getContext (hashd.hashOf b));
    }`) as { url: string; path: string; drv: string; hash: string; context: string[]; hashContext: string[] };
    expect(r.hash).toMatch(HASH);
    expect(r.hash).toBe(urlHash(r.path));
    expect(r.url).toBe(`http://${r.hash}.localhost/`);
    // the context names the backend's derivation: Nix makes it an input, then a runtime reference
    expect(r.context).toEqual([r.drv]);
    expect(r.hashContext).toEqual([r.drv]);
  });

  test("zone, port and scheme; the curried form; plain store path strings", () => {
    const r = nixEval(`let b = fake "backend"; h = hashd.hashOf b; in {
      inherit h;
      zoned = hashd.mkHashUrl { service = b; zone = "svc.example.org"; };
      ported = hashd.mkHashUrl { service = b; zone = "localhost"; port = 8480; };
      tls = hashd.mkHashUrl { service = b; zone = "example.org"; scheme = "https"; };
      curried = hashd.mkHashUrlIn "svc.example.org" b;
      fromString = hashd.hashOf "/nix/store/${"0".repeat(32)}-x";
    }`) as Record<string, string>;
    expect(r.zoned).toBe(`http://${r.h}.svc.example.org/`);
    expect(r.ported).toBe(`http://${r.h}.localhost:8480/`);
    expect(r.tls).toBe(`https://${r.h}.example.org/`);
    expect(r.curried).toBe(r.zoned as string);
    expect(r.fromString).toBe("0".repeat(32));
  });

  test.each([
    ['hashd.hashOf "/tmp/x"', "is not in /nix/store"],
    ['hashd.hashOf "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x"', "not a store path"],
    ["hashd.hashOf 42", "expected a derivation or a store path"],
    ['hashd.mkHashUrl { service = fake "b"; zone = "Bad_Zone"; }', "is not a DNS name"],
    ['hashd.mkHashUrl { service = fake "b"; port = 70000; }', "port must be"],
  ])("%s is refused", (expr, message) => {
    expect(nixEvalError(expr)).toContain(message);
  });
});

describe("mkService writes the manifest", () => {
  test("defaults: every field of manifest.ts, accepted by the agent's schema", () => {
    const r = nixEval(`let s = svc { name = "api"; exec = [ "/bin/api" "--flag" ]; }; in {
      json = s.drvAttrs.manifest;
      name = s.name;
      passAsFile = s.drvAttrs.passAsFile;
      builder = s.drvAttrs.builder;
    }`) as { json: string; name: string; passAsFile: string[]; builder: string };
    const raw = JSON.parse(r.json);
    // credentials and stateDirectory are written only when used: the manifest of a service that
    // uses neither is what it was before they existed (same store hash; older agents read it)
    const unused = ["credentials", "stateDirectory"];
    expect(Object.keys(raw).sort()).toEqual(
      Object.keys(manifestSchema.shape)
        .filter((k) => !unused.includes(k))
        .sort(),
    );
    expect(raw).toEqual({
      schema: 1,
      name: "api",
      exec: ["/bin/api", "--flag"],
      socket: { type: "fd" },
      readiness: { type: "accept" },
      idleStopSec: 0,
      drainTimeoutSec: 30,
      startTimeoutSec: 60,
      environment: {},
    });
    expect(parseManifestText(r.json)).toEqual({ ...raw, credentials: [], stateDirectory: false });
    expect(r.name).toBe("api");
    expect(r.passAsFile).toEqual(["manifest"]);
    expect(r.builder).toBe("/bin/sh");
    expect(MANIFEST_RELATIVE_PATH).toBe("hashd/service.json");
  });

  test("every option round-trips through the agent's schema", () => {
    const r = nixEval(`let
      b = fake "backend";
      s = svc {
        name = "web.v2+x";
        version = "2";
        exec = [ "/bin/web" (fake "tool") 8 ];
        socket = { type = "port"; port = 8080; };
        readiness = { type = "http"; path = "/healthz?full=1"; };
        idleStopSec = 300;
        drainTimeoutSec = 90;
        startTimeoutSec = 10;
        environment = { BACKEND_URL = hashd.mkHashUrl b; TOOL = fake "tool"; N = 3; };
        credentials = [ "db-url" "stripe_key.v2" "0" ];
        stateDirectory = true;
      };
    in { json = s.drvAttrs.manifest; name = s.name; backend = b.outPath; tool = (fake "tool").outPath; }`) as {
      json: string;
      name: string;
      backend: string;
      tool: string;
    };
    const m = parseManifestText(r.json);
    expect(r.name).toBe("web.v2+x-2");
    expect(m.name).toBe("web.v2+x");
    expect(m.exec).toEqual(["/bin/web", r.tool, "8"]);
    expect(m.socket).toEqual({ type: "port", port: 8080 });
    expect(m.readiness).toEqual({ type: "http", path: "/healthz?full=1" });
    expect([m.idleStopSec, m.drainTimeoutSec, m.startTimeoutSec]).toEqual([300, 90, 10]);
    expect(m.environment).toEqual({
      BACKEND_URL: `http://${urlHash(r.backend)}.localhost/`,
      N: "3",
      TOOL: r.tool,
    });
    expect(m.credentials).toEqual(["db-url", "stripe_key.v2", "0"]);
    expect(m.stateDirectory).toBe(true);
  });

  test("credentials: 32 names of 64 characters are fine, and stateDirectory = false writes nothing", () => {
    const names = Array.from({ length: 32 }, (_, i) => `${i}`.padEnd(64, "x"));
    const r = nixEval(
      `(svc { name = "a"; exec = [ "/x" ]; credentials = [ ${names.map((n) => `"${n}"`).join(" ")} ]; stateDirectory = false; }).drvAttrs.manifest`,
    ) as string;
    expect(parseManifestText(r).credentials).toEqual(names);
    expect(JSON.parse(r).stateDirectory).toBeUndefined();
  });

  test("the store paths in exec and environment become inputs of the service's derivation", () => {
    const r = nixEval(`let
      b = fake "backend";
      t = fake "tool";
      s = svc { name = "web"; exec = [ "\${t}/bin/tool" ]; environment.BACKEND_URL = hashd.mkHashUrl b; };
    in { ctx = builtins.attrNames (builtins.getContext s.drvAttrs.manifest); want = [ b.drvPath t.drvPath ]; }`) as {
      ctx: string[];
      want: string[];
    };
    expect(r.ctx.sort()).toEqual(r.want.sort());
  });

  test.each([
    ['svc { name = "-bad"; exec = [ "/x" ]; }', 'name "-bad" must be 1 to 64'],
    ['svc { name = "a"; }', "exec is required"],
    ['svc { name = "a"; exec = [ ]; }', "exec must have at least the program"],
    ['svc { name = "a"; exec = [ "bin/x" ]; }', "exec[0] must be an absolute path"],
    ['svc { name = "a"; exec = [ "/x" "" ]; }', "exec[1] must not be empty"],
    ['svc { name = "a"; exec = [ "/x" { } ]; }', "exec[1] must be a string, a derivation or a path"],
    ['svc { name = "a"; exec = [ "/x" ]; environment."1X" = "v"; }', 'variable name "1X" must match'],
    [
      'svc { name = "a"; exec = [ "/x" ]; environment.X = "a\\nb"; }',
      "environment.X must not contain a newline",
    ],
    ['svc { name = "a"; exec = [ "/x" ]; socket.type = "tcp"; }', 'socket.type must be "fd"'],
    ['svc { name = "a"; exec = [ "/x" ]; socket = { type = "port"; }; }', "socket.port must be an integer"],
    ['svc { name = "a"; exec = [ "/x" ]; socket = { type = "fd"; port = 1; }; }', "socket.port is only for"],
    [
      'svc { name = "a"; exec = [ "/x" ]; socket = { type = "fd"; extra = 1; }; }',
      "socket has unknown fields: extra",
    ],
    [
      'svc { name = "a"; exec = [ "/x" ]; readiness.type = "http"; }',
      "readiness.path must be an absolute URL path",
    ],
    ['svc { name = "a"; exec = [ "/x" ]; readiness.type = "tcp"; }', 'readiness.type must be "notify"'],
    ['svc { name = "a"; exec = [ "/x" ]; idleStopSec = 1.5; }', "idleStopSec must be an integer"],
    ['svc { name = "a"; exec = [ "/x" ]; drainTimeoutSec = 0; }', "drainTimeoutSec must be from 1 to 86400"],
    ['svc { name = "a"; exec = [ "/x" ]; files."../x" = ""; }', 'files."../x": use a relative path'],
    ['svc { name = "a"; exec = [ "/x" ]; files."hashd/service.json" = ""; }', "hashd/ is where mkService"],
    // credentials: names only (the host maps them to files), as src/model/manifest.ts takes them
    [
      'svc { name = "a"; exec = [ "/x" ]; credentials = { db-url = "postgres://"; }; }',
      "credentials must be a list of names",
    ],
    ['svc { name = "a"; exec = [ "/x" ]; credentials = "db-url"; }', "credentials must be a list of names"],
    ['svc { name = "a"; exec = [ "/x" ]; credentials = [ "a/b" ]; }', 'credential name "a/b" must be'],
    ['svc { name = "a"; exec = [ "/x" ]; credentials = [ ".." ]; }', 'credential name ".." must be'],
    ['svc { name = "a"; exec = [ "/x" ]; credentials = [ "DB_URL" ]; }', 'credential name "DB_URL" must be'],
    ['svc { name = "a"; exec = [ "/x" ]; credentials = [ "" ]; }', 'credential name "" must be'],
    ['svc { name = "a"; exec = [ "/x" ]; credentials = [ "a:b" ]; }', 'credential name "a:b" must be'],
    [`svc { name = "a"; exec = [ "/x" ]; credentials = [ "${"a".repeat(65)}" ]; }`, "credential name"],
    ['svc { name = "a"; exec = [ "/x" ]; credentials = [ 1 ]; }', "credential names must be strings"],
    ['svc { name = "a"; exec = [ "/x" ]; credentials = [ "x" "y" "x" ]; }', "credential x is named twice"],
    [
      `svc { name = "a"; exec = [ "/x" ]; credentials = [ ${Array.from({ length: 33 }, (_, i) => `"c${i}"`).join(" ")} ]; }`,
      "more than 32 credentials",
    ],
    [
      'svc { name = "a"; exec = [ "/x" ]; stateDirectory = "/var/lib/a"; }',
      "stateDirectory must be true or false",
    ],
  ])("%s is refused at evaluation", (expr, message) => {
    const stderr = nixEvalError(`(${expr}).drvPath`);
    expect(stderr).toContain(message);
  });

  test("given pkgs, the builder comes from nixpkgs (stand-in pkgs)", () => {
    const r = nixEval(`let
      pkgs = { bash = fake "bash"; coreutils = fake "coreutils"; stdenv.hostPlatform.system = "aarch64-linux"; };
      s = hashd.mkService { inherit pkgs; name = "a"; exec = [ "/x" ]; };
    in { builder = s.drvAttrs.builder; system = s.system; script = builtins.elemAt s.drvAttrs.args 1;
         bash = (fake "bash").outPath; coreutils = (fake "coreutils").outPath; }`) as Record<string, string>;
    expect(r.builder).toBe(`${r.bash}/bin/sh`);
    expect(r.system).toBe("aarch64-linux");
    expect(r.script).toStartWith(`export PATH=${r.coreutils}/bin\n`);
  });
});

describe("the example chain (evaluation)", () => {
  const chain = (args: string) =>
    `let e = import ${EXAMPLE} ({ system = "x86_64-linux"; } // ${args}); in {
      backend = e.backend.outPath; frontend = e.frontend.outPath;
      backendManifest = e.backend.drvAttrs.manifest; frontendManifest = e.frontend.drvAttrs.manifest; }`;
  type Chain = { backend: string; frontend: string; backendManifest: string; frontendManifest: string };

  test("the frontend's BACKEND_URL is the backend's hash URL; versions give new hashes", () => {
    const v1 = nixEval(chain("{ }")) as Chain;
    const v2 = nixEval(chain('{ version = "2"; }')) as Chain;
    const v2old = nixEval(chain('{ version = "2"; backendVersion = "1"; }')) as Chain;
    const front = parseManifestText(v1.frontendManifest);
    expect(front.environment.BACKEND_URL).toBe(`http://${urlHash(v1.backend)}.localhost/`);
    expect(front.environment.VERSION).toBe("1");
    expect(front.readiness).toEqual({ type: "http", path: "/healthz" });
    expect(parseManifestText(v1.backendManifest).exec[0]).toBe("/usr/bin/python3");
    // the backend names a credential (the host maps it to a file) and keeps state by name
    expect(parseManifestText(v1.backendManifest)).toMatchObject({
      credentials: ["signing-key"],
      stateDirectory: true,
    });
    expect(front).toMatchObject({ credentials: [], stateDirectory: false });
    expect(v2.frontend).not.toBe(v1.frontend);
    expect(v2.backend).not.toBe(v1.backend);
    // a new frontend over the same backend: the backend's hash, and so its deployment, is shared
    expect(v2old.backend).toBe(v1.backend);
    expect(v2old.frontend).not.toBe(v1.frontend);
    expect(v2old.frontend).not.toBe(v2.frontend);
  });
});

describe("the Nix files parse", () => {
  const files = [
    "flake.nix",
    "nixos-module/default.nix",
    "nix/lib.nix",
    "nix/manifest.nix",
    "nix/service.nix",
    "nix/hash-url.nix",
    "nix/agent-unit.nix",
    "nix/example/default.nix",
    "nix/vm-test.nix",
  ];
  test.each(files)("%s", (file) => {
    // --parse also resolves every variable, so a typo in a name fails here
    const r = nixInstantiate(["--parse", path.join(ROOT, file)]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  test("the agent unit: notify + watchdog, KillMode=process, runtime directory kept", () => {
    const unit = nixEval(`import ${AGENT_UNIT} { }`) as Record<string, unknown>;
    expect(unit).toMatchObject({
      Type: "notify",
      NotifyAccess: "all",
      WatchdogSec: 30,
      Restart: "on-failure",
      KillMode: "process",
      RuntimeDirectory: "hashd",
      RuntimeDirectoryPreserve: "yes",
      StateDirectory: "hashd",
      ProtectSystem: "strict",
      CapabilityBoundingSet: [""],
    });
    const low = nixEval(`import ${AGENT_UNIT} { lowPorts = true; }`) as Record<string, unknown>;
    expect(low.CapabilityBoundingSet).toEqual(["CAP_NET_BIND_SERVICE"]);
  });
});

// The NixOS module is tested with nixpkgs' real module system in test/nixos-module.test.ts, and the
// flake and the README's examples in test/readme-nix.test.ts.

// ---------------------------------------------------------------------------------------------------
// On a sandbox host: real builds in a private store, the example under systemd socket activation, and
// a stand-in agent run under nix/agent-unit.nix's settings.

/** serviceConfig (NixOS shape) -> systemd-run -p arguments. */
function unitProperties(config: Record<string, unknown>): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values)
      args.push("-p", `${key}=${typeof v === "boolean" ? (v ? "yes" : "no") : String(v)}`);
  }
  return args;
}

describe("on a sandbox host", () => {
  let sb: Sandbox | undefined;
  let a: Host;
  let backend = "";
  let frontend = "";

  beforeAll(async () => {
    sb = await Sandbox.create({ hosts: ["a"] });
    a = sb.host("a");
    // nix-build through the host's daemon, into the host's private store
    // a copy inside the host: the repository may live under the machine's /tmp, which hosts don't see
    const example = `${await installNixLib(a)}/example`;
    frontend = await a.nixBuild(`(import ${example} { }).frontend`);
    backend = await a.nixBuild(`(import ${example} { }).backend`);
  });
  afterAll(async () => {
    await sb?.destroy();
  });

  test("the example chain builds; the frontend's closure references the backend", async () => {
    expect(frontend).toMatch(/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-example-frontend-1$/);
    const refs = (await a.run(["nix-store", "-q", "--references", frontend])).trim().split("\n").sort();
    expect(refs).toEqual([backend, frontend].sort());
    expect((await a.run(["nix-store", "-q", "--requisites", frontend])).split("\n")).toContain(backend);

    const front = parseManifestText(await a.readFile(`${frontend}/${MANIFEST_RELATIVE_PATH}`));
    expect(front.environment.BACKEND_URL).toBe(`http://${urlHash(backend)}.localhost/`);
    // placeholder "out" became the closure's own path
    expect(front.exec).toEqual(["/usr/bin/python3", `${frontend}/app/frontend.py`]);
    const back = parseManifestText(await a.readFile(`${backend}/${MANIFEST_RELATIVE_PATH}`));
    expect(back.exec).toEqual(["/usr/bin/python3", `${backend}/app/backend.py`]);
    expect(await a.readFile(`${backend}/app/serve.py`)).toContain(
      "socket.socket(fileno=SD_LISTEN_FDS_START)",
    );
  });

  test("the example serves on its socket-activated fd 3 and the frontend calls the backend", async () => {
    const start = async (unit: string, dir: string, socket: string, env: Record<string, string>) => {
      const m = parseManifestText(await a.readFile(`${dir}/${MANIFEST_RELATIVE_PATH}`));
      const vars = Object.entries({ ...m.environment, ...env }).flatMap(([k, v]) => ["-E", `${k}=${v}`]);
      await a.run([
        "systemd-run",
        `--unit=${unit}`,
        `--socket-property=ListenStream=${socket}`,
        ...vars,
        "--",
        ...m.exec,
      ]);
    };
    // The frontend reaches the backend at its hash URL through an "ingress": here the backend's own
    // socket stands in for it, via HASHD_INGRESS, and the Host header carries the hash.
    await start("hashd-ex-backend", backend, "127.0.0.1:18480", {});
    await start("hashd-ex-frontend", frontend, "/run/hashd-ex-frontend.sock", {
      HASHD_INGRESS: "127.0.0.1:18480",
    });
    const get = (args: string[]) =>
      a.run(["curl", "-sS", "--max-time", "10", ...args], { timeoutMs: 15_000 });
    // run by hand: no credentials directory, no state directory
    const alone = { service: "example-backend", version: "1", signingKey: null, stateCreatedBy: null };
    expect(JSON.parse(await get(["http://127.0.0.1:18480/"]))).toEqual(alone);
    const report = JSON.parse(await get(["--unix-socket", "/run/hashd-ex-frontend.sock", "http://x/"]));
    expect(report).toEqual({
      service: "example-frontend",
      version: "1",
      backendUrl: `http://${urlHash(backend)}.localhost/`,
      backend: alone,
      backendStatus: 200,
    });
    expect(await get(["--unix-socket", "/run/hashd-ex-frontend.sock", "http://x/healthz"])).toBe("ok\n");

    // SIGTERM drains: a request in flight when the stop begins still gets its answer
    const slow = get(["--unix-socket", "/run/hashd-ex-frontend.sock", "http://x/?sleep_ms=1500"]);
    await Bun.sleep(500);
    await a.run(["systemctl", "stop", "hashd-ex-frontend.service"]);
    expect(JSON.parse(await slow).version).toBe("1");
    await a.exec([
      "systemctl",
      "stop",
      "hashd-ex-frontend.socket",
      "hashd-ex-backend.socket",
      "hashd-ex-backend.service",
    ]);
  });

  test("under the agent unit's settings, a stand-in agent drives systemd and nix, and its restart stops nothing", async () => {
    // Without LoadCredential (no credentials here): the module's cluster-key credential is run by
    // test/nixos-module.test.ts, with the real agent under the unit the module generates.
    const settings = nixEval(`import ${AGENT_UNIT} { }`) as Record<string, unknown>;
    await a.run(["mkdir", "-p", "/nix/var/nix/gcroots/hashd"]); // the module's tmpfiles rule
    // What the agent does at start and per activation, each step a command of the kind it runs.
    const probe = `set -eu
      grep -q '^CapBnd:[[:space:]]*0000000000000000$' /proc/self/status
      test -w /var/lib/hashd && test -w /run/hashd
      nix-store --check-validity ${backend}
      ln -sfn ${backend} /nix/var/nix/gcroots/hashd/${urlHash(backend)}
      if touch /nix/store/hashd-must-fail 2>/dev/null; then echo "/nix/store is writable" >&2; exit 1; fi
      if [ ! -e /run/hashd/sockets/probe.sock ]; then
        systemd-run --unit=hashd-probe --socket-property=ListenStream=/run/hashd/sockets/probe.sock \\
          -E VERSION=1 -- /usr/bin/python3 ${backend}/app/backend.py
      fi
      systemctl start hashd-probe.service
      systemctl show -p ActiveState hashd-probe.service
      journalctl -n 1 -u hashd-probe.service >/dev/null
      systemd-notify --ready
      while sleep 5; do systemd-notify WATCHDOG=1; done`;
    const run = await a.exec(
      ["systemd-run", "--unit=hashd-agent", ...unitProperties(settings), "--", "/bin/sh", "-c", probe],
      { timeoutMs: 60_000 },
    );
    if (run.code !== 0) {
      const journal = await a.exec(["journalctl", "--no-pager", "-n", "40", "-u", "hashd-agent.service"]);
      throw new Error(`the stand-in agent failed to start:\n${run.stderr}\n${journal.stdout}`);
    }
    const show = async (unit: string, prop: string) =>
      (await a.run(["systemctl", "show", "--value", "-p", prop, unit])).trim();
    expect(await show("hashd-agent.service", "ActiveState")).toBe("active");
    expect(await show("hashd-probe.service", "ActiveState")).toBe("active");
    expect((await a.run(["readlink", `/nix/var/nix/gcroots/hashd/${urlHash(backend)}`])).trim()).toBe(
      backend,
    );
    const servicePid = await show("hashd-probe.service", "MainPID");

    const agentPid = await show("hashd-agent.service", "MainPID");
    await a.run(["systemctl", "restart", "hashd-agent.service"], { timeoutMs: 60_000 });
    expect(await show("hashd-agent.service", "ActiveState")).toBe("active");
    expect(await show("hashd-agent.service", "MainPID")).not.toBe(agentPid);
    await a.run(["systemctl", "stop", "hashd-agent.service"]);
    // the service it started is untouched, and its socket path is still there (RuntimeDirectoryPreserve)
    expect(await show("hashd-probe.service", "MainPID")).toBe(servicePid);
    expect(await show("hashd-probe.socket", "ActiveState")).toBe("active");
    const answer = await a.run([
      "curl",
      "-sS",
      "--max-time",
      "10",
      "--unix-socket",
      "/run/hashd/sockets/probe.sock",
      "http://x/",
    ]);
    expect(JSON.parse(answer)).toEqual({
      service: "example-backend",
      version: "1",
      signingKey: null,
      stateCreatedBy: null,
    });
  });
});
