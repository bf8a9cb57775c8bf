import { defineCommand } from "citty";
// The one place the version is written is package.json (the flake reads it too); bun build --compile
// bundles this import, so the binary needs no package.json beside it.
import packageJson from "../../package.json" with { type: "json" };
import type { presentDeployment } from "../agent/control/api.ts";
import { startAgent } from "../agent/daemon.ts";
import { HashdError } from "../lib/errors.ts";
import { loadConfig } from "../model/config.ts";
import type { DeploymentEvent } from "../model/deployment.ts";
import { parseStoreHash, parseStorePath } from "../nix/store-path.ts";
import { AgentClient, agentArgs } from "./client.ts";
import { ago, table } from "./format.ts";
import { hostArg, onHost } from "./host.ts";
import type { Stream } from "./stream.ts";

export const VERSION: string = packageJson.version;

type ShownDeployment = ReturnType<typeof presentDeployment>;

/** What a command prints: the object for --json, and lines for a person. */
export interface Output {
  json: unknown;
  text: string;
  /** printed in full, and yet a failure: its message goes to stderr and its code is the exit code */
  failure?: HashdError;
  /** then a child takes over standard output until it ends or is stopped (stream.ts) */
  stream?: Stream;
}

function deploymentLines(d: ShownDeployment): string {
  const lines = [
    `${d.state.padEnd(10)} ${d.hash}  ${d.name}`,
    `  url:     ${d.url}`,
    `  path:    ${d.path}`,
    `  socket:  ${d.socketPath}`,
    `  units:   ${d.units.socket} ${d.units.service}`,
  ];
  if (d.error) lines.push(`  error:   ${d.error.replace(/\n/g, "\n           ")}`);
  return lines.join("\n");
}

export const serve = defineCommand({
  meta: { name: "serve", description: "run the agent (normally started by systemd)" },
  args: {
    config: { type: "string", description: "JSON config file" },
    "state-dir": { type: "string", description: "state directory (default /var/lib/hashd)" },
    "runtime-dir": { type: "string", description: "runtime directory (default /run/hashd)" },
    zone: { type: "string", description: "DNS zone of hash URLs (default localhost)" },
  },
  async run({ args }) {
    const config = await loadConfig(args.config, {
      stateDir: args["state-dir"],
      runtimeDir: args["runtime-dir"],
      zone: args.zone,
    });
    const agent = await startAgent(config, VERSION);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
    await agent.stop();
    return undefined;
  },
});

export const activate = defineCommand({
  meta: { name: "activate", description: "activate a service closure by store path" },
  args: {
    path: { type: "positional", description: "/nix/store/<hash>-<name>", required: true },
    wait: { type: "boolean", description: "wait until the service is ready", default: true },
    timeout: { type: "string", description: "readiness wait in seconds", default: "120" },
    force: { type: "boolean", description: "re-create the units even if the hash is live", default: false },
    lazy: {
      type: "boolean",
      description: "create the socket only; start on first connection",
      default: false,
    },
    from: { type: "string", description: "substituter to copy from when the path is missing" },
    ...agentArgs,
  },
  async run({ args }): Promise<Output> {
    const timeoutSec = Number(args.timeout);
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
      throw new HashdError(
        "bad_request",
        `--timeout must be a positive number of seconds, not ${args.timeout}`,
      );
    }
    parseStorePath(args.path); // refuse early, even when the agent is down
    const r = await new AgentClient(args.socket).request<{ deployment: ShownDeployment; existing: boolean }>(
      "POST",
      "/v1/deployments",
      {
        path: args.path,
        wait: args.wait && !args.lazy,
        timeoutSec,
        force: args.force,
        lazy: args.lazy,
        ...(args.from ? { substituter: args.from } : {}),
      },
    );
    const prefix = r.existing ? "already live (nothing touched)\n" : "";
    return { json: r, text: prefix + deploymentLines(r.deployment) };
  },
});

export const deactivate = defineCommand({
  meta: { name: "deactivate", description: "stop a hash's socket and service and drop its GC root" },
  args: { hash: { type: "positional", required: true }, ...agentArgs },
  async run({ args }): Promise<Output> {
    parseStoreHash(args.hash);
    const r = await new AgentClient(args.socket).request<{ deployment: ShownDeployment }>(
      "DELETE",
      `/v1/deployments/${encodeURIComponent(args.hash)}`,
    );
    return { json: r, text: deploymentLines(r.deployment) };
  },
});

export const list = defineCommand({
  meta: { name: "list", description: "list the deployments of this host" },
  args: { ...agentArgs, ...hostArg },
  async run({ args }): Promise<Output> {
    const r = args.host
      ? await onHost(args.host).hashdJson<{ deployments: ShownDeployment[] }>(["list"])
      : await new AgentClient(args.socket).request<{ deployments: ShownDeployment[] }>(
          "GET",
          "/v1/deployments",
        );
    const rows = r.deployments.map((d) => [d.state, d.hash, d.name, ago(d.updatedAt), d.url]);
    return {
      json: r,
      text: rows.length ? table(["STATE", "HASH", "NAME", "CHANGED", "URL"], rows) : "no deployments",
    };
  },
});

export const show = defineCommand({
  meta: { name: "show", description: "show one deployment and its recent events" },
  args: { hash: { type: "positional", required: true }, ...agentArgs, ...hostArg },
  async run({ args }): Promise<Output> {
    parseStoreHash(args.hash);
    type Shown = { deployment: ShownDeployment; events: DeploymentEvent[] };
    const r = args.host
      ? await onHost(args.host).hashdJson<Shown>(["show", args.hash])
      : await new AgentClient(args.socket).request<Shown>(
          "GET",
          `/v1/deployments/${encodeURIComponent(args.hash)}`,
        );
    const events = r.events.map(
      (e) => `  ${new Date(e.at).toISOString()}  ${e.kind.padEnd(10)} ${e.message}`,
    );
    return { json: r, text: `${deploymentLines(r.deployment)}\n  events:\n${events.join("\n")}` };
  },
});
