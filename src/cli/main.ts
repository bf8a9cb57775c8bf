import { type CommandDef, defineCommand, renderUsage, runCommand } from "citty";
import { HashdError } from "../lib/errors.ts";
import { alias, pin, rollback, unpin } from "./alias.ts";
import { activate, deactivate, list, type Output, serve, show, VERSION } from "./commands.ts";
import { deploy } from "./deploy.ts";
import { logs } from "./logs.ts";
import { members } from "./members.ts";
import { restart } from "./restart.ts";
import { rollout } from "./rollout.ts";
import { status } from "./status.ts";
import { type StreamRunner, streamOutcome } from "./stream.ts";

export const root = defineCommand({
  meta: {
    name: "hashd",
    version: VERSION,
    description: "deploy Nix closures as socket-activated services, by hash",
  },
  subCommands: {
    serve,
    activate,
    deactivate,
    list,
    show,
    deploy,
    logs,
    restart,
    members,
    alias,
    rollout,
    rollback,
    pin,
    unpin,
    status,
  },
});

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** runs a command's stream (`hashd logs --follow`) attached to the terminal; tests pass a fake */
  stream?: StreamRunner;
}

/**
 * The one place that prints results and errors and decides the exit code (README, "Exit codes").
 * argv is a parameter so tests never touch process.argv.
 */
export async function main(argv: string[], io: Io): Promise<number> {
  const wantsJson = argv.includes("--json");
  try {
    if (argv[0] === "--version") {
      io.out(VERSION);
      return 0;
    }
    // Walk down sub-commands ourselves: citty's runCommand drops a sub-command's result.
    let cmd = root as CommandDef;
    let parent: CommandDef | undefined;
    let rest = argv;
    const path: string[] = [];
    for (;;) {
      const subs = cmd.subCommands as Record<string, CommandDef> | undefined;
      const [first, ...tail] = rest;
      if (!subs || first === undefined || first.startsWith("-")) break;
      const next = subs[first];
      if (!next) {
        io.err(`hashd: unknown command ${JSON.stringify([...path, first].join(" "))} (see hashd --help)`);
        return 1;
      }
      parent = cmd;
      cmd = next;
      path.push(first);
      rest = tail;
    }
    const asksHelp = rest.includes("--help") || rest.includes("-h");
    if (asksHelp || cmd.subCommands) {
      io.out(await renderUsage(cmd, parent));
      return asksHelp ? 0 : 1;
    }
    // Dispatched here rather than through the root command: citty drops a sub-command's result.
    const { result } = await runCommand(cmd, { rawArgs: rest });
    const output = result as Output | undefined;
    if (output?.stream) {
      if (!io.stream) throw new HashdError("internal", `hashd ${path.join(" ")}: no terminal to stream to`);
      const outcome = streamOutcome(output.stream, await io.stream(output.stream));
      if (outcome.error) io.err(`hashd: ${outcome.error.message}`);
      return outcome.code;
    }
    if (output) io.out(wantsJson ? JSON.stringify(output.json, null, 2) : output.text);
    if (output?.failure) {
      io.err(`hashd: ${output.failure.message}`);
      return output.failure.exitCode;
    }
    return 0;
  } catch (e) {
    if (e instanceof HashdError) {
      if (wantsJson) io.out(JSON.stringify(e.toJSON(), null, 2));
      io.err(`hashd: ${e.message}`);
      return e.exitCode;
    }
    if ((e as { name?: string }).name === "CLIError") {
      io.err(`hashd: ${(e as Error).message} (see hashd --help)`);
      return 1;
    }
    io.err(`hashd: internal error: ${(e as Error).stack ?? e}`);
    return 70;
  }
}
