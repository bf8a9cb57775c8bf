import { defineCommand } from "citty";
import type { AliasView, HistoryEntry } from "../agent/aliases/alias-service.ts";
import { formatAliasValue } from "../agent/aliases/alias-value.ts";
import { HashdError } from "../lib/errors.ts";
import { agentArgs } from "./client.ts";
import type { Output } from "./commands.ts";
import { ago, table } from "./format.ts";
import { askAgent, hostArg } from "./host.ts";
import { limitArgs, rolloutText, startGuardCall } from "./rollout.ts";

const common = { ...agentArgs, ...hostArg } as const;

function aliasTable(aliases: AliasView[], pins: string[] = []): string {
  const rows = aliases.map((a) => [a.name, formatAliasValue(a), ago(a.setAt), a.by]);
  const text = rows.length ? table(["ALIAS", "HASH", "SET", "BY"], rows) : "no aliases";
  return pins.length ? `${text}\npinned: ${pins.join(" ")}` : text;
}

/** `name=<hash>` pairs, all checked before anything is sent. */
export function parseAssignments(items: string[]): Record<string, string> {
  if (items.length === 0) throw new HashdError("bad_request", "expected one or more name=<hash>");
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new HashdError("bad_request", `expected name=<hash>, not ${JSON.stringify(item)}`);
    const name = item.slice(0, eq);
    if (name in out) throw new HashdError("bad_request", `alias ${name} given twice`);
    out[name] = item.slice(eq + 1);
  }
  return out;
}

const set = defineCommand({
  meta: {
    name: "set",
    description: "point one or more aliases at hashes (or name=<a>:90,<b>:10), in one atomic write",
  },
  args: {
    guard: {
      type: "string",
      description: "watch the new hash this long (e.g. 60s) and switch back if it fails the limits",
    },
    ...limitArgs,
    ...common,
  },
  async run({ args }): Promise<Output> {
    const assignments = parseAssignments(args._);
    if (args.guard !== undefined) {
      const entries = Object.entries(assignments);
      const [name, to] = entries[0] as [string, string];
      if (entries.length !== 1 || to.includes(",") || to.includes(":"))
        throw new HashdError("bad_request", "--guard watches one alias set to one hash (name=<hash>)");
      const r = await startGuardCall(args, name, to, args.guard);
      return { json: r, text: rolloutText(r) };
    }
    const r = await askAgent<{ aliases: AliasView[] }>(args, "POST", "/v1/aliases", { set: assignments }, [
      "alias",
      "set",
      ...args._,
    ]);
    return { json: r, text: aliasTable(r.aliases) };
  },
});

const listAliases = defineCommand({
  meta: { name: "list", description: "list aliases and pins" },
  args: { ...common },
  async run({ args }): Promise<Output> {
    const r = await askAgent<{ aliases: AliasView[]; pins: string[] }>(
      args,
      "GET",
      "/v1/aliases",
      undefined,
      ["alias", "list"],
    );
    return { json: r, text: aliasTable(r.aliases, r.pins) };
  },
});

const history = defineCommand({
  meta: { name: "history", description: "every hash an alias pointed at, newest first" },
  args: { name: { type: "positional", required: true }, ...common },
  async run({ args }): Promise<Output> {
    const path = `/v1/aliases/${encodeURIComponent(args.name)}/history`;
    const r = await askAgent<{ name: string; history: HistoryEntry[] }>(args, "GET", path, undefined, [
      "alias",
      "history",
      args.name,
    ]);
    const rows = r.history.map((h) => [
      new Date(h.at).toISOString(),
      formatAliasValue(h),
      h.by,
      h.rollout === undefined ? "" : `${h.rollout.status}: ${h.rollout.note}`,
    ]);
    return {
      json: r,
      text: rows.length ? table(["AT", "HASH", "BY", "ROLLOUT"], rows) : `no history for ${args.name}`,
    };
  },
});

const rm = defineCommand({
  meta: { name: "rm", description: "remove an alias (its hashes retire if nothing else wants them)" },
  args: { name: { type: "positional", required: true }, ...common },
  async run({ args }): Promise<Output> {
    const path = `/v1/aliases/${encodeURIComponent(args.name)}`;
    const r = await askAgent<{ aliases: AliasView[] }>(args, "DELETE", path, undefined, [
      "alias",
      "rm",
      args.name,
    ]);
    return { json: r, text: aliasTable(r.aliases) };
  },
});

export const alias = defineCommand({
  meta: { name: "alias", description: "mutable names that point at hashes: set, list, history, rm" },
  subCommands: { set, list: listAliases, history, rm },
});

export const rollback = defineCommand({
  meta: { name: "rollback", description: "point an alias back at its previous hash" },
  args: { name: { type: "positional", required: true }, ...common },
  async run({ args }): Promise<Output> {
    const path = `/v1/aliases/${encodeURIComponent(args.name)}/rollback`;
    const r = await askAgent<{ alias: AliasView }>(args, "POST", path, undefined, ["rollback", args.name]);
    return { json: r, text: `${r.alias.name} -> ${r.alias.hash}` };
  },
});

export const pin = defineCommand({
  meta: { name: "pin", description: "keep a hash wanted without an alias" },
  args: { hash: { type: "positional", required: true }, ...common },
  async run({ args }): Promise<Output> {
    const r = await askAgent<{ pins: string[] }>(args, "POST", "/v1/pins", { hash: args.hash }, [
      "pin",
      args.hash,
    ]);
    return { json: r, text: `pinned: ${r.pins.join(" ")}` };
  },
});

export const unpin = defineCommand({
  meta: { name: "unpin", description: "drop a pin" },
  args: { hash: { type: "positional", required: true }, ...common },
  async run({ args }): Promise<Output> {
    const path = `/v1/pins/${encodeURIComponent(args.hash)}`;
    const r = await askAgent<{ pins: string[] }>(args, "DELETE", path, undefined, ["unpin", args.hash]);
    return { json: r, text: r.pins.length ? `pinned: ${r.pins.join(" ")}` : "no pins" };
  },
});
