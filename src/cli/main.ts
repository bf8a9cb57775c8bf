import { type CommandDef, defineCommand, renderUsage, runCommand } from "citty";
import { HashdError } from "../lib/errors.ts";
import { activate, deactivate, list, type Output, serve, show, VERSION } from "./commands.ts";
import { deploy } from "./deploy.ts";
import { logs } from "./logs.ts";

export const root = defineCommand({
  meta: {
    name: "hashd",
    version: VERSION,
    description: "deploy Nix closures as socket-activated services, by hash",
  },
  subCommands: { serve, activate, deactivate, list, show, deploy, logs },
});

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/**
 * The one place that prints results and errors and decides the exit code (README, "Exit codes").
 * argv is a parameter so tests never touch process.argv.
 */
export async function main(argv: string[], io: Io): Promise<number> {
  const wantsJson = argv.includes("--json");
  try {
    const [name, ...rest] = argv;
    const commands = root.subCommands as Record<string, CommandDef>;
    const sub = name !== undefined ? commands[name] : undefined;
    if (name === undefined || name === "--help" || name === "-h" || (sub && rest.includes("--help"))) {
      io.out(await renderUsage(sub ?? (root as CommandDef), sub ? (root as CommandDef) : undefined));
      return name === undefined ? 1 : 0;
    }
    if (name === "--version") {
      io.out(VERSION);
      return 0;
    }
    if (!sub) {
      io.err(`hashd: unknown command ${JSON.stringify(name)} (see hashd --help)`);
      return 1;
    }
    // Dispatched here rather than through the root command: citty drops a sub-command's result.
    const { result } = await runCommand(sub, { rawArgs: rest });
    const output = result as Output | undefined;
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
