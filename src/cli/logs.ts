import { defineCommand } from "citty";
import { classifyName, isMalformed, malformedNameMessage } from "../agent/aliases/resolve.ts";
import { MAX_LINES, type NameLogs } from "../agent/control/logs-api.ts";
import { parseTarget, sshArgv } from "../deploy/target.ts";
import { HashdError } from "../lib/errors.ts";
import { journalArgv } from "../systemd/systemctl.ts";
import { hashOfUnit } from "../systemd/unit-names.ts";
import { AgentClient, DEFAULT_CONTROL_SOCKET } from "./client.ts";
import type { Output } from "./commands.ts";
import { hostArg, onHost } from "./host.ts";
import type { Stream } from "./stream.ts";

/** `hashd logs` as the user typed it, checked before the agent or a host is asked anything. */
export interface LogsRequest {
  /** a store hash or an alias; resolved by the agent (its alias table, as the ingress does) */
  name: string;
  lines: number;
  follow: boolean;
  host?: string;
}

export function parseLogsArgs(args: {
  name: string;
  lines: string;
  follow: boolean;
  json: boolean;
  host?: string | undefined;
}): LogsRequest {
  const c = classifyName(args.name);
  if (isMalformed(c)) throw new HashdError("bad_request", malformedNameMessage(c));
  // with --follow, -n 0 means only what comes from now on
  const min = args.follow ? 0 : 1;
  const lines = /^[0-9]{1,5}$/.test(args.lines) ? Number(args.lines) : Number.NaN;
  if (!(lines >= min && lines <= MAX_LINES)) {
    throw new HashdError(
      "bad_request",
      `-n must be a whole number from ${min} to ${MAX_LINES}, not ${JSON.stringify(args.lines)}`,
    );
  }
  if (args.follow && args.json) {
    throw new HashdError("bad_request", "--follow streams journal text; it does not go with --json");
  }
  if (args.host !== undefined) parseTarget(args.host); // refused before ssh runs
  return {
    name: args.name,
    lines,
    follow: args.follow,
    ...(args.host !== undefined ? { host: args.host } : {}),
  };
}

/**
 * `--follow` on another host: that host's `hashd logs --follow` over ssh, whose output is ours.
 * When ssh ends (Ctrl-C, SIGTERM, a lost connection), the remote sshd closes the pipe and the
 * remote journalctl, which watches its standard output, exits: nothing is left running there.
 */
export function remoteFollow(r: LogsRequest & { host: string }): Stream {
  return {
    argv: sshArgv(parseTarget(r.host), ["hashd", "logs", r.name, "--follow", "-n", String(r.lines)]),
    via: { kind: "ssh", host: r.host },
  };
}

/** `--follow` here: journalctl on the units the agent named for the hash (only hashd's units). */
export function localFollow(answer: Pick<NameLogs, "unit">, lines: number): Stream {
  const units = [answer.unit].flat();
  for (const u of units) {
    if (hashOfUnit(u) === undefined)
      throw new HashdError("internal", `the agent named a unit that is not hashd's: ${u}`);
  }
  return {
    argv: journalArgv(units, { lines, output: "short-iso", follow: true }),
    via: { kind: "journalctl" },
  };
}

export const logs = defineCommand({
  meta: {
    name: "logs",
    description:
      "the journal of a hash's units, by hash or alias (journalctl -u hashd-<hash>.service); -f follows it",
  },
  args: {
    name: {
      type: "positional",
      description: "store hash (32 characters) or alias (e.g. prod)",
      required: true,
    },
    lines: {
      type: "string",
      alias: "n",
      description: "how many of the last lines (with -f, 0 is allowed)",
      default: "50",
    },
    follow: {
      type: "boolean",
      alias: "f",
      description: "keep printing new lines until Ctrl-C, SIGTERM or the ssh connection closes",
      default: false,
    },
    ...hostArg,
    socket: { type: "string", description: "control socket of the agent", default: DEFAULT_CONTROL_SOCKET },
    json: { type: "boolean", description: "print JSON (not with --follow)", default: false },
  },
  async run({ args }): Promise<Output> {
    const r = parseLogsArgs(args);
    if (r.follow && r.host !== undefined)
      return { json: null, text: "", stream: remoteFollow({ ...r, host: r.host }) };
    const path = `/v1/logs/${encodeURIComponent(r.name)}?lines=${r.follow ? 0 : r.lines}`;
    const answer =
      r.host !== undefined
        ? await onHost(r.host).hashdJson<NameLogs>(["logs", r.name, "-n", String(r.lines)])
        : await new AgentClient(args.socket).request<NameLogs>("GET", path);
    if (r.follow) return { json: null, text: "", stream: localFollow(answer, r.lines) };
    const units = [answer.unit].flat().join(" ");
    return {
      json: answer,
      text: answer.lines.length ? answer.lines.join("\n") : `-- no journal entries for ${units} --`,
    };
  },
});
