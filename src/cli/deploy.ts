import { defineCommand } from "citty";
import { type DeployOptions, deploy as runDeploy } from "../deploy/deploy.ts";
import { buildInstallable, classifyInput } from "../deploy/input.ts";
import { TtyProgress } from "../deploy/progress.ts";
import { failureOf, renderText } from "../deploy/result.ts";
import { withSshMux } from "../deploy/ssh-mux.ts";
import { parseTargets } from "../deploy/target.ts";
import { HashdError } from "../lib/errors.ts";
import { exec } from "../lib/exec.ts";
import { isAliasName } from "../model/names.ts";
import { parseDuration, parseSteps } from "../model/rollout.ts";
import type { StorePath } from "../nix/store-path.ts";
import type { Output } from "./commands.ts";
import { limitArgs, limitBody } from "./rollout.ts";

export const deploy = defineCommand({
  meta: {
    name: "deploy",
    description: "build if needed, copy a closure to hosts over SSH, activate it there and wait until ready",
  },
  args: {
    closure: {
      type: "positional",
      description: "/nix/store/<hash>-<name>, or a flake installable to build (e.g. .#web)",
      required: true,
    },
    to: {
      type: "string",
      description: "targets: [user@]host[:port], comma-separated (e.g. root@web1,root@web2)",
      required: true,
    },
    alias: { type: "string", description: "switch this alias to the hash once every target is ready" },
    rollout: {
      type: "string",
      description: "move --alias in steps instead (its weights, e.g. 5,25,50,100, or `default`)",
    },
    guard: {
      type: "string",
      description: "switch --alias at once, watch it this long (e.g. 60s), switch back if it fails",
    },
    "step-time": { type: "string", description: "with --rollout: least time per step (default 60s)" },
    ...limitArgs,
    wait: {
      type: "boolean",
      description: "with --rollout or --guard: wait until it ends; exit 10 if it was aborted",
      default: false,
    },
    "wait-timeout": { type: "string", description: "how long --wait waits, in seconds", default: "3600" },
    timeout: { type: "string", description: "readiness wait per target, in seconds", default: "120" },
    json: {
      type: "boolean",
      description: "print the result as JSON (also when stdout is not a terminal)",
      default: false,
    },
  },
  async run({ args }): Promise<Output> {
    // Everything the user typed is checked before any process runs.
    const input = classifyInput(args.closure);
    const targets = parseTargets(args.to);
    const timeoutSec = Number(args.timeout);
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0 || timeoutSec > 3600) {
      throw new HashdError(
        "bad_request",
        `--timeout must be a number of seconds up to 3600, not ${args.timeout}`,
      );
    }
    if (args.alias !== undefined && !isAliasName(args.alias)) {
      throw new HashdError(
        "bad_request",
        `bad alias ${JSON.stringify(args.alias)}: lower-case letters, digits and "-" (a DNS label), and not a store hash`,
      );
    }

    const aliasMode = aliasModeOf(args);
    const waitSec = Number(args["wait-timeout"]);
    if (!Number.isFinite(waitSec) || waitSec <= 0 || waitSec > 86_400)
      throw new HashdError("bad_request", `--wait-timeout must be a number of seconds up to 86400`);

    const interactive = !args.json && process.stdout.isTTY === true && process.stderr.isTTY === true;
    const progress = interactive ? new TtyProgress(process.stderr) : undefined;
    try {
      const path = input.kind === "path" ? input.path : await build(input.installable, progress);
      progress?.start(`deploying ${path.path} to ${targets.length} host(s)`);
      const result = await withSshMux(targets, exec, (ssh) =>
        runDeploy({
          path,
          targets,
          timeoutSec,
          exec,
          ssh,
          ...(args.alias !== undefined ? { alias: args.alias, aliasMode } : {}),
          ...(args.wait ? { waitRollout: { pollMs: 2000, timeoutMs: waitSec * 1000 } } : {}),
          ...(input.kind === "installable" ? { installable: input.installable } : {}),
          ...(progress ? { progress } : {}),
          ...(process.env.NIX_SSHOPTS ? { inheritedNixSshOpts: process.env.NIX_SSHOPTS } : {}),
        }),
      );
      const failure = failureOf(result);
      return {
        json: result,
        // quiet but complete in pipes: the same JSON as --json
        text: interactive ? renderText(result) : JSON.stringify(result, null, 2),
        ...(failure ? { failure } : {}),
      };
    } finally {
      progress?.stop();
    }
  },
});

/** --rollout / --guard and their flags, checked before anything runs; forwarded to the remote hashd. */
function aliasModeOf(args: {
  alias?: string | undefined;
  rollout?: string | undefined;
  guard?: string | undefined;
  "step-time"?: string | undefined;
  wait?: boolean | undefined;
  "max-error-rate"?: string | undefined;
  "max-p99-ratio"?: string | undefined;
  "min-requests"?: string | undefined;
  interval?: string | undefined;
}): NonNullable<DeployOptions["aliasMode"]> {
  const { rollout, guard } = args;
  if (rollout === undefined && guard === undefined) {
    if (args.wait) throw new HashdError("bad_request", "--wait waits for a --rollout or --guard");
    return { kind: "set" };
  }
  if (args.alias === undefined) throw new HashdError("bad_request", "--rollout and --guard move an --alias");
  if (rollout !== undefined && guard !== undefined)
    throw new HashdError("bad_request", "give --rollout or --guard, not both");
  const { remote } = limitBody(args);
  if (guard !== undefined) {
    parseDuration(guard, "--guard");
    return { kind: "guard", args: [guard, ...remote] };
  }
  const steps = rollout as string;
  if (steps.startsWith("-"))
    throw new HashdError(
      "bad_request",
      "--rollout takes its steps (e.g. --rollout 5,25,50,100, or --rollout default)",
    );
  const extra: string[] = [];
  if (steps !== "" && steps !== "default") {
    parseSteps(steps);
    extra.push("--steps", steps);
  }
  if (args["step-time"] !== undefined) {
    parseDuration(args["step-time"], "--step-time");
    extra.push("--step-time", args["step-time"]);
  }
  return { kind: "rollout", args: [...extra, ...remote] };
}

async function build(installable: string, progress: TtyProgress | undefined): Promise<StorePath> {
  progress?.start(`building ${installable}`);
  progress?.update("nix build", "build", installable);
  const path = await buildInstallable(exec, installable);
  progress?.remove("nix build");
  return path;
}
