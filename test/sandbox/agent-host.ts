import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { ExecResult, Host } from "./harness.ts";

export const REPO = resolve(import.meta.dir, "../..");
/** The binary the hosts run: dist/hashd, or $HASHD_BINARY (a build made elsewhere, used as it is). */
export const BINARY = process.env.HASHD_BINARY ?? `${REPO}/dist/hashd`;

/** Builds dist/hashd once per test process if it is missing (`bun run check` builds it first). */
export async function ensureBinary(): Promise<string> {
  if (process.env.HASHD_BINARY) return BINARY;
  if (!existsSync(BINARY)) {
    const p = Bun.spawn(["bun", "run", "build"], { cwd: REPO, stdout: "inherit", stderr: "inherit" });
    if ((await p.exited) !== 0) throw new Error("bun run build failed");
  }
  return BINARY;
}

/**
 * The agent's unit as the NixOS module writes it: Type=notify (READY=1 through systemd-notify),
 * a watchdog, restart on failure, and KillMode=process so that stopping the agent never touches the
 * services (they are separate transient units anyway).
 */
export function agentUnit(extraArgs: string[] = []): string {
  return `[Unit]
Description=hashd agent
After=network.target nix-daemon.socket

[Service]
Type=notify
NotifyAccess=all
ExecStart=/usr/local/bin/hashd serve --config /etc/hashd/config.json ${extraArgs.join(" ")}
WatchdogSec=30
Restart=on-failure
RestartSec=200ms
KillMode=process
Environment=NIX_REMOTE=daemon

[Install]
WantedBy=multi-user.target
`;
}

export interface AgentInstallOptions {
  config?: Record<string, unknown>;
}

/** Installs the compiled binary, a config and the agent's unit on a host, and starts it. */
export async function installAgent(host: Host, options: AgentInstallOptions = {}): Promise<void> {
  await host.installBinary(await ensureBinary(), "/usr/local/bin/hashd");
  await host.writeFile(
    "/etc/hashd/config.json",
    JSON.stringify({ zone: "test", ...options.config }, null, 2),
  );
  await host.writeFile("/etc/systemd/system/hashd.service", agentUnit());
  await host.run(["systemctl", "daemon-reload"]);
  await host.run(["systemctl", "enable", "--now", "hashd.service"]);
}

/** Runs the hashd CLI on a host. */
export function hashd(host: Host, args: string[], timeoutMs = 120_000): Promise<ExecResult> {
  return host.exec(["/usr/local/bin/hashd", ...args], { timeoutMs });
}

/** Runs the CLI with --json and parses its output; throws with stderr on a non-zero exit. */
export async function hashdJson<T = Record<string, unknown>>(host: Host, args: string[]): Promise<T> {
  const r = await hashd(host, [...args, "--json"]);
  if (r.code !== 0) throw new Error(`hashd ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function unitProps(host: Host, unit: string, props: string[]): Promise<Record<string, string>> {
  const out = await host.run(["systemctl", "show", `--property=${props.join(",")}`, unit]);
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/**
 * A holds API call made as the service of hash `as` makes it (docs/holds.md): curl on `host` through
 * /run/hashd/service.sock, with that service's token read as root from the agent's token directory
 * (src/agent/holds/hold-tokens.ts). Returns the answer's status and body.
 */
export async function holdsApi(
  host: Host,
  as: string,
  method: "GET" | "POST" | "DELETE",
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const token = (await host.run(["cat", `/run/hashd/hold-tokens/${as}`])).trim();
  const r = await host.exec([
    "curl",
    "-sS",
    "-w",
    "\n%{http_code}",
    "--unix-socket",
    "/run/hashd/service.sock",
    "-X",
    method,
    "-H",
    `authorization: Bearer ${token}`,
    ...(body === undefined ? [] : ["-H", "content-type: application/json", "-d", JSON.stringify(body)]),
    `http://agent${path}`,
  ]);
  const lines = r.stdout.trimEnd().split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}

/** Takes a hold on `hash` as its service; returns the hold's id (throws unless 201). */
export async function takeHold(host: Host, hash: string, ttlSec: number): Promise<string> {
  const r = await holdsApi(host, hash, "POST", "/v1/holds", { hash, ttlSec });
  if (r.status !== 201) throw new Error(`${host.name}: hold on ${hash} refused: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { id: string }).id;
}

/** Releases hold `id` on `hash` as its service (throws unless 204). */
export async function releaseHold(host: Host, hash: string, id: string): Promise<void> {
  const r = await holdsApi(host, hash, "DELETE", `/v1/holds/${id}`);
  if (r.status !== 204) throw new Error(`${host.name}: release of hold ${id} refused: ${r.status} ${r.body}`);
}

/** GET through a unix socket inside the host (curl is not assumed; python3 is). */
export async function getUnix(
  host: Host,
  socketPath: string,
  path = "/",
  timeoutSec = 30,
): Promise<ExecResult> {
  const py = `
import http.client, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(${timeoutSec})
        self.sock.connect(sys.argv[1])
c = C("localhost", timeout=${timeoutSec})
c.request("GET", sys.argv[2])
r = c.getresponse()
sys.stdout.write("%d %s" % (r.status, r.read().decode()))
`;
  return host.exec(["/usr/bin/python3", "-c", py, socketPath, path], { timeoutMs: (timeoutSec + 5) * 1000 });
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, 250);
  }
}

/** One base64 AES-256 key, as the gossip keyring file holds it (one key per line, first seals). */
export function newClusterKey(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
}

export const GOSSIP_PORT = 7946;

/**
 * Installs the agent on every host as one cluster: the same key file, gossip on each host's
 * bridge address, the first host as the seed, the ingress on all addresses so peers can forward.
 */
export async function installCluster(
  hosts: Host[],
  options: { key?: string; config?: Record<string, unknown>; seeds?: string[] } = {},
): Promise<void> {
  const key = options.key ?? newClusterKey();
  const seeds = options.seeds ?? [`${hosts[0]?.ip}:${GOSSIP_PORT}`];
  await Promise.all(
    hosts.map(async (h) => {
      await h.writeFile("/etc/hashd/cluster.key", `${key}\n`, 0o600);
      await installAgent(h, {
        config: {
          zone: "test",
          ingress: { address: "0.0.0.0", port: 8480 },
          gossip: {
            port: GOSSIP_PORT,
            address: h.ip,
            seeds: seeds.filter((s) => !s.startsWith(`${h.ip}:`)),
            keyFile: "/etc/hashd/cluster.key",
            name: h.name,
          },
          ...options.config,
        },
      });
    }),
  );
}

/**
 * The example chain's backend (nix/example) names a credential, `signing-key`: a host that runs it
 * maps it to a file (the agent's `credentials`), as services.hashd.credentials does on NixOS.
 */
export const EXAMPLE_CREDENTIALS = {
  "example-backend": { "signing-key": "/run/keys/example-signing-key" },
} as const;

/** Writes the example backend's signing key (root only) on a host; returns its value. */
export async function writeExampleSecrets(host: Host, value = "example signing key\n"): Promise<string> {
  await host.run(["install", "-d", "-m", "700", "/run/keys"]);
  await host.writeFile(EXAMPLE_CREDENTIALS["example-backend"]["signing-key"], value, 0o400);
  return value;
}

/**
 * Copies the repository's nix/ folder (lib.nix, the example chain) into a host at /root/hashd/nix.
 * The host sees the machine's files through its overlay, but not the machine's /tmp, where a CI
 * clone may live; a copy works wherever the repository is.
 */
export async function installNixLib(host: Host): Promise<string> {
  const { readdirSync, readFileSync, statSync } = await import("node:fs");
  const dest = "/root/hashd/nix";
  const copy = async (from: string, to: string) => {
    for (const name of readdirSync(from)) {
      const src = `${from}/${name}`;
      if (statSync(src).isDirectory()) await copy(src, `${to}/${name}`);
      else await host.writeFile(`${to}/${name}`, readFileSync(src));
    }
  };
  await copy(`${REPO}/nix`, dest);
  return dest;
}
