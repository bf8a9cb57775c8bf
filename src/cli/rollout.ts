import { defineCommand } from "citty";
import type { RolloutView } from "../agent/control/rollout-api.ts";
import { HashdError } from "../lib/errors.ts";
import { parseDuration, parsePercent, parseSteps } from "../model/rollout.ts";
import { agentArgs } from "./client.ts";
import type { Output } from "./commands.ts";
import { askAgent, hostArg } from "./host.ts";

const common = { ...agentArgs, ...hostArg } as const;

/** The judging limits, shared by `rollout start`, `alias set --guard` and `deploy --rollout/--guard`. */
export const limitArgs = {
  "max-error-rate": {
    type: "string",
    description: "abort above this error rate over the baseline's (default 1%)",
  },
  "max-p99-ratio": { type: "string", description: "abort above this p99 over the baseline's (default 1.5)" },
  "min-requests": { type: "string", description: "requests before any verdict (default 200)" },
  interval: { type: "string", description: "analysis window: how often the numbers are judged (default 5s)" },
} as const;

interface LimitFlags {
  "max-error-rate"?: string | undefined;
  "max-p99-ratio"?: string | undefined;
  "min-requests"?: string | undefined;
  interval?: string | undefined;
}

/** The limit flags as the control API takes them, each checked here first; `remote` repeats them for --host. */
export function limitBody(args: LimitFlags): { body: Record<string, number>; remote: string[] } {
  const body: Record<string, number> = {};
  const remote: string[] = [];
  if (args["max-error-rate"] !== undefined) {
    body.maxErrorRate = parsePercent(args["max-error-rate"], "--max-error-rate");
    remote.push("--max-error-rate", args["max-error-rate"]);
  }
  if (args["max-p99-ratio"] !== undefined) {
    const v = Number(args["max-p99-ratio"]);
    if (!Number.isFinite(v) || v < 1)
      throw new HashdError("bad_request", "--max-p99-ratio must be a number >= 1, e.g. 1.5");
    body.maxP99Ratio = v;
    remote.push("--max-p99-ratio", args["max-p99-ratio"]);
  }
  if (args["min-requests"] !== undefined) {
    const v = Number(args["min-requests"]);
    if (!Number.isInteger(v) || v < 1)
      throw new HashdError("bad_request", "--min-requests must be a positive integer");
    body.minRequests = v;
    remote.push("--min-requests", args["min-requests"]);
  }
  if (args.interval !== undefined) {
    body.intervalMs = parseDuration(args.interval, "--interval");
    remote.push("--interval", args.interval);
  }
  return { body, remote };
}

export function rolloutText(v: RolloutView): string {
  const weights = v.split.map((t) => `${t.hash.slice(0, 12)} ${t.weight}%`).join(", ");
  const lines = [`${v.alias}: ${v.summary}`, `  weights: ${weights}`];
  if (v.judgement !== undefined)
    lines.push(`  last judgement: ${v.judgement.verdict}: ${v.judgement.reason}`);
  return lines.join("\n");
}

const start = defineCommand({
  meta: { name: "start", description: "move an alias to a hash in steps, judged by the ingress's numbers" },
  args: {
    alias: { type: "positional", required: true },
    hash: { type: "positional", required: true },
    steps: { type: "string", description: "the new hash's weight at each step (default 5,25,50,100)" },
    "step-time": { type: "string", description: "least time per step (default 60s)" },
    ...limitArgs,
    ...common,
  },
  async run({ args }): Promise<Output> {
    const { body, remote } = limitBody(args);
    const request: Record<string, unknown> = { to: args.hash, ...body };
    const forward = ["rollout", "start", args.alias, args.hash, ...remote];
    if (args.steps !== undefined) {
      request.steps = parseSteps(args.steps);
      forward.push("--steps", args.steps);
    }
    if (args["step-time"] !== undefined) {
      request.stepTimeMs = parseDuration(args["step-time"], "--step-time");
      forward.push("--step-time", args["step-time"]);
    }
    const path = `/v1/rollouts/${encodeURIComponent(args.alias)}`;
    const r = await askAgent<RolloutView>(args, "POST", path, request, forward);
    return { json: r, text: rolloutText(r) };
  },
});

const status = defineCommand({
  meta: { name: "status", description: "rollouts and guards: steps, weights, the last decision" },
  args: { alias: { type: "positional", required: false }, ...common },
  async run({ args }): Promise<Output> {
    if (args.alias) {
      const path = `/v1/rollouts/${encodeURIComponent(args.alias)}`;
      const r = await askAgent<RolloutView>(args, "GET", path, undefined, ["rollout", "status", args.alias]);
      return { json: r, text: rolloutText(r) };
    }
    const r = await askAgent<{ rollouts: RolloutView[] }>(args, "GET", "/v1/rollouts", undefined, [
      "rollout",
      "status",
    ]);
    return { json: r, text: r.rollouts.length ? r.rollouts.map(rolloutText).join("\n") : "no rollouts" };
  },
});

const byHand = (action: "pause" | "resume" | "promote" | "abort", description: string) =>
  defineCommand({
    meta: { name: action, description },
    args: { alias: { type: "positional", required: true }, ...common },
    async run({ args }): Promise<Output> {
      const path = `/v1/rollouts/${encodeURIComponent(args.alias)}/${action}`;
      const r = await askAgent<RolloutView>(args, "POST", path, undefined, ["rollout", action, args.alias]);
      return { json: r, text: rolloutText(r) };
    },
  });

export const rollout = defineCommand({
  meta: {
    name: "rollout",
    description: "staged rollouts driven by the cluster: start, status, pause, resume, promote, abort",
  },
  subCommands: {
    start,
    status,
    pause: byHand("pause", "hold a rollout at its step"),
    resume: byHand("resume", "go on from the step it was paused at (its time starts again)"),
    promote: byHand("promote", "send 100% to the new hash now and end the rollout"),
    abort: byHand("abort", "send 100% back to the old hash in one write"),
  },
});

/** `hashd alias set <name>=<hash> --guard 60s`: switch now, switch back if the new hash fails the limits. */
export async function startGuardCall(
  args: { socket: string; host?: string | undefined } & LimitFlags,
  name: string,
  to: string,
  guard: string,
): Promise<RolloutView> {
  const { body, remote } = limitBody(args);
  const request = { name, to, watchMs: parseDuration(guard, "--guard"), ...body };
  return askAgent<RolloutView>(args, "POST", "/v1/guards", request, [
    "alias",
    "set",
    `${name}=${to}`,
    "--guard",
    guard,
    ...remote,
  ]);
}
