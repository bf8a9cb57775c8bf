import { defineCommand } from "citty";
import type { presentMembers } from "../agent/control/api.ts";
import { AgentClient, agentArgs } from "./client.ts";
import type { Output } from "./commands.ts";
import { ago, table } from "./format.ts";
import { hostArg, onHost } from "./host.ts";

export interface MembersView {
  self: string;
  members: ReturnType<typeof presentMembers>;
}

/** The member table: one line per member, this agent marked with "*". */
export function membersText(r: MembersView, now = Date.now()): string {
  if (r.members.length === 0) return `${r.self}: no gossip section in the config; this agent runs alone`;
  const rows = r.members.map((m) => [
    m.self ? `${m.name} *` : m.name,
    m.address,
    m.state,
    String(m.incarnation),
    m.self ? "-" : m.lastContact > 0 ? ago(m.lastContact, now) : "never",
    String(m.hashes.length),
  ]);
  return table(["MEMBER", "ADDRESS", "STATE", "INCARNATION", "LAST CONTACT", "HASHES"], rows);
}

export const members = defineCommand({
  meta: { name: "members", description: "gossip members with their state, incarnation and last contact" },
  args: {
    ...hostArg,
    ...agentArgs,
  },
  async run({ args }): Promise<Output> {
    const r = args.host
      ? await onHost(args.host).hashdJson<MembersView>(["members"])
      : await new AgentClient(args.socket).request<MembersView>("GET", "/v1/members");
    return { json: r, text: membersText(r) };
  },
});
