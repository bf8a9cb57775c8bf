/**
 * A staged rollout (or a guarded switch) as it travels inside the alias record it drives
 * (alias-record.ts): every step is one alias write that carries the new weights and the rollout's
 * progress together, so replication, ordering, history and restarts are the alias table's.
 */
import type { AliasTarget } from "./alias-record.ts";

export const ROLLOUT_STATUSES = ["running", "paused", "aborted", "done"] as const;
export type RolloutStatus = (typeof ROLLOUT_STATUSES)[number];

export const ROLLOUT_KINDS = ["rollout", "guard"] as const;
export type RolloutKind = (typeof ROLLOUT_KINDS)[number];

/** The limits a canary is judged against (rollout.ts `judge`). */
export interface RolloutLimits {
  /** errors (5xx answers and upstream failures) over requests, as a fraction: 0.01 = 1% */
  maxErrorRate: number;
  /** the canary's p99 latency over the baseline's */
  maxP99Ratio: number;
  /** fewer canary requests than this in the window: inconclusive (wait, never pass) */
  minRequests: number;
}

export interface RolloutState {
  /** "guard": a plain switch watched for stepTimeMs (steps [100]) and switched back if it fails */
  kind: RolloutKind;
  /** the baseline: the hash the alias pointed at when the rollout started */
  from: string;
  /** the canary */
  to: string;
  /** the canary's weight at each step, in percent: ascending, the last one 100 */
  steps: number[];
  /** index into steps of the step the alias is at now */
  step: number;
  /** wall-clock ms at which the current step began (or was resumed) */
  stepSince: number;
  /** how long a step must pass before the next one; a guard's watch time */
  stepTimeMs: number;
  /** how often the driver judges the numbers (the analysis window) */
  intervalMs: number;
  limits: RolloutLimits;
  status: RolloutStatus;
  /** the last decision and the numbers behind it, e.g. "aborted at step 2 (25%): error rate ..." */
  note: string;
  /** wall-clock ms at which the rollout started (with `to`, it names the rollout) */
  startedAt: number;
}

export const ROLLOUT_BOUNDS = {
  maxSteps: 10,
  noteChars: 400,
  /** 1 s to 1 day for a step, 250 ms to 10 min for the analysis window */
  stepTimeMs: [1_000, 86_400_000] as const,
  intervalMs: [250, 600_000] as const,
  maxP99Ratio: [1, 1000] as const,
  minRequests: [1, 1_000_000] as const,
} as const;

/** The defaults of `hashd rollout start` (README "Rolling out" says why). */
export const ROLLOUT_DEFAULTS = {
  steps: [5, 25, 50, 100],
  stepTimeMs: 60_000,
  intervalMs: 5_000,
  limits: { maxErrorRate: 0.01, maxP99Ratio: 1.5, minRequests: 200 },
  guardMs: 60_000,
} as const;

/** The alias's targets at the rollout's current step: a split, or the canary alone at 100%. */
export function splitAtStep(r: Pick<RolloutState, "from" | "to" | "steps" | "step">): AliasTarget[] | null {
  const weight = r.steps[r.step] ?? 100;
  if (weight >= 100) return null;
  return [
    { hash: r.from, weight: 100 - weight },
    { hash: r.to, weight },
  ];
}

/** Whether a rollout still needs its driver (and keeps its baseline wanted). */
export const isActiveRollout = (r: RolloutState | undefined): r is RolloutState =>
  r !== undefined && (r.status === "running" || r.status === "paused");

/** Why a rollout state is malformed (decoded from a peer, or asked for), or null. */
export function rolloutProblem(r: RolloutState, isHash: (h: string) => boolean): string | null {
  const b = ROLLOUT_BOUNDS;
  if (!ROLLOUT_KINDS.includes(r.kind)) return `unknown rollout kind ${JSON.stringify(r.kind)}`;
  if (!ROLLOUT_STATUSES.includes(r.status)) return `unknown rollout status ${JSON.stringify(r.status)}`;
  if (!isHash(r.from) || !isHash(r.to)) return "a rollout's from and to must be store hashes";
  if (r.from === r.to) return "a rollout's canary is its baseline";
  if (!Array.isArray(r.steps) || r.steps.length < 1 || r.steps.length > b.maxSteps)
    return `a rollout has 1 to ${b.maxSteps} steps`;
  let last = 0;
  for (const s of r.steps) {
    if (!Number.isInteger(s) || s <= last || s > 100)
      return "steps must be ascending integer percentages from 1 to 100";
    last = s;
  }
  if (last !== 100) return "the last step must be 100";
  if (!Number.isInteger(r.step) || r.step < 0 || r.step >= r.steps.length) return "step out of range";
  if (!inRange(r.stepTimeMs, b.stepTimeMs)) return `step time must be ${span(b.stepTimeMs)} ms`;
  if (!inRange(r.intervalMs, b.intervalMs)) return `analysis window must be ${span(b.intervalMs)} ms`;
  const { maxErrorRate, maxP99Ratio, minRequests } = r.limits;
  if (!(typeof maxErrorRate === "number" && maxErrorRate >= 0 && maxErrorRate <= 1))
    return "max error rate must be from 0 to 1";
  if (
    !(typeof maxP99Ratio === "number" && maxP99Ratio >= b.maxP99Ratio[0] && maxP99Ratio <= b.maxP99Ratio[1])
  )
    return `max p99 ratio must be ${span(b.maxP99Ratio)}`;
  if (!Number.isInteger(minRequests) || !inRange(minRequests, b.minRequests))
    return `min requests must be ${span(b.minRequests)}`;
  if (typeof r.note !== "string" || r.note.length > b.noteChars) return `note longer than ${b.noteChars}`;
  if (!isWall(r.stepSince) || !isWall(r.startedAt)) return "rollout times must be wall-clock ms";
  return null;
}

const inRange = (v: unknown, [lo, hi]: readonly [number, number]): boolean =>
  typeof v === "number" && Number.isFinite(v) && v >= lo && v <= hi;
const span = ([lo, hi]: readonly [number, number]): string => `${lo} to ${hi}`;
const isWall = (v: unknown): boolean =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= 2 ** 52;
