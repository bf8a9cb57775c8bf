import { defineCommand } from "citty";
import { classifyName, isMalformed, malformedNameMessage } from "../agent/aliases/resolve.ts";
import type { NameRestart } from "../agent/control/restart-api.ts";
import { parseTarget } from "../deploy/target.ts";
import { HashdError } from "../lib/errors.ts";
import { AgentClient, agentArgs } from "./client.ts";
import type { Output } from "./commands.ts";
import { hostArg, onHost } from "./host.ts";

/** What a person reads of a restart. */
export function restartText(r: NameRestart): string {
  const d = r.deployment as { name?: string } | undefined;
  const who = `${r.alias ? `${r.alias} -> ` : ""}${r.hash}${d?.name ? ` (${d.name})` : ""}`;
  if (!r.restarted) return `${who} was not running (scaled to zero): its next start reads the files`;
  const cut = r.cut > 0 ? `, ${r.cut} still in flight were cut` : "";
  return `restarted ${who}: ${r.drained} request(s) in flight drained first${cut}; new requests waited ${r.heldMs} ms`;
}

export const restart = defineCommand({
  meta: {
    name: "restart",
    description:
      "restart a hash's program (by hash or alias) so that it reads its credential files again; its socket stays and requests in flight finish first",
  },
  args: {
    name: {
      type: "positional",
      description: "store hash (32 characters) or alias (e.g. prod)",
      required: true,
    },
    ...hostArg,
    ...agentArgs,
  },
  async run({ args }): Promise<Output> {
    const c = classifyName(args.name);
    if (isMalformed(c)) throw new HashdError("bad_request", malformedNameMessage(c));
    if (args.host !== undefined) parseTarget(args.host); // refused before ssh runs
    // A restart waits for the drain (up to drainTimeoutSec) and the new program's readiness.
    const answer =
      args.host !== undefined
        ? await onHost(args.host).hashdJson<NameRestart>(["restart", args.name], 3_900_000)
        : await new AgentClient(args.socket).request<NameRestart>(
            "POST",
            `/v1/restart/${encodeURIComponent(args.name)}`,
          );
    return { json: answer, text: restartText(answer) };
  },
});
