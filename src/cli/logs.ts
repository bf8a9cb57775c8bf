import { defineCommand } from "citty";
import { HashdError } from "../lib/errors.ts";
import { parseStoreHash } from "../nix/store-path.ts";
import { AgentClient, DEFAULT_CONTROL_SOCKET } from "./client.ts";
import type { Output } from "./commands.ts";
import { hostArg, onHost } from "./host.ts";

export interface UnitLogs {
  hash: string;
  unit: string | string[];
  lines: string[];
}

export const logs = defineCommand({
  meta: { name: "logs", description: "the journal of a hash's service (journalctl -u hashd-<hash>.service)" },
  args: {
    hash: { type: "positional", description: "store hash (32 characters)", required: true },
    lines: { type: "string", alias: "n", description: "how many of the last lines", default: "50" },
    ...hostArg,
    socket: { type: "string", description: "control socket of the agent", default: DEFAULT_CONTROL_SOCKET },
    json: { type: "boolean", description: "print JSON", default: false },
  },
  async run({ args }): Promise<Output> {
    const hash = parseStoreHash(args.hash);
    const lines = Number(args.lines);
    if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
      throw new HashdError("bad_request", `-n must be a whole number from 1 to 10000, not ${args.lines}`);
    }
    const r = args.host
      ? await onHost(args.host).hashdJson<UnitLogs>(["logs", hash, "-n", String(lines)])
      : await new AgentClient(args.socket).request<UnitLogs>(
          "GET",
          `/v1/deployments/${hash}/logs?lines=${lines}`,
        );
    return {
      json: r,
      text: r.lines.length ? r.lines.join("\n") : `-- no journal entries for ${[r.unit].flat().join(" ")} --`,
    };
  },
});
