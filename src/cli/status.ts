import { defineCommand } from "citty";
import type { StatusSnapshot } from "../agent/status/types.ts";
import { AgentClient, agentArgs } from "./client.ts";
import type { Output } from "./commands.ts";
import { ago, table } from "./format.ts";
import { hostArg, onHost } from "./host.ts";

/** The status page's data as text: members, hashes (with where they run and why), aliases. */
export function renderStatus(s: StatusSnapshot): string {
  const members = s.members.map((m) => [
    m.name + (m.name === s.self ? " *" : ""),
    m.address,
    m.state,
    String(m.incarnation),
  ]);
  const hashes = s.hashes.map((h) => [
    h.state ?? "-",
    h.hash,
    h.name ?? "?",
    String(h.inFlight),
    String(h.holds),
    h.hosts.map((x) => `${x.member}:${x.state}`).join(" ") || "-",
    h.verdict ?? "",
  ]);
  const aliases = s.aliases.map((a) => [
    a.name,
    a.hash ?? "(removed)",
    a.history[1]?.hash ? `was ${a.history[1].hash}` : "",
  ]);
  return [
    `${s.self} (zone ${s.zone}), ${new Date(s.generatedAt).toISOString()}`,
    "",
    members.length
      ? table(["MEMBER", "ADDRESS", "STATE", "INCARNATION"], members)
      : "no cluster (a member of one)",
    "",
    hashes.length
      ? table(["HERE", "HASH", "NAME", "IN FLIGHT", "HOLDS", "HOSTS", "WHY"], hashes)
      : "no hashes",
    "",
    aliases.length ? table(["ALIAS", "HASH", "BEFORE"], aliases) : "no aliases",
    ...(s.events.length
      ? [
          "",
          "recent events:",
          ...s.events.slice(0, 10).map((e) => `  ${ago(e.at)}  ${e.hash}  ${e.kind}  ${e.message}`),
        ]
      : []),
  ].join("\n");
}

export const status = defineCommand({
  meta: { name: "status", description: "members, hashes and aliases as this agent sees them" },
  args: {
    ...agentArgs,
    ...hostArg,
  },
  async run({ args }): Promise<Output> {
    const s = args.host
      ? await onHost(args.host).hashdJson<StatusSnapshot>(["status"])
      : await new AgentClient(args.socket).request<StatusSnapshot>("GET", "/v1/status");
    return { json: s, text: renderStatus(s) };
  },
});
