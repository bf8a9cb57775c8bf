/**
 * Staged rollouts and guarded switches, the pure half: judging a canary's numbers against its
 * baseline, what the driver does next, which member drives, the flags of `hashd rollout start` and
 * `hashd alias set --guard`, and a rollout's line of status. No I/O and no clock: the time is an
 * argument. The driver (agent/rollout/driver.ts) reads the cluster's counts and writes the alias.
 *
 * The rules `judge` applies, in this order (n = the canary's requests in the window, e = its
 * errors: 5xx answers plus upstream failures, L = limits.maxErrorRate, M = limits.minRequests):
 *
 * 1. The baseline counts only when it has at least M requests itself; its error rate b is then
 *    errors over requests, else b = 0 (a baseline of 3 requests with 1 error would excuse a canary
 *    failing a third of its requests).
 * 2. With n >= M, the canary fails when its error rate e/n is above L + b: the limit is how much
 *    worse than the baseline the canary may be, so a downstream outage that fails both hashes alike
 *    does not abort a good canary (going back to the old hash would not help), and with a healthy
 *    baseline (b near 0) it is the plain limit. Exactly at the limit passes.
 * 3. With n < M, the canary fails early when e > (L + b) * M: more errors than M requests may
 *    have, so even if every request still to come succeeded, the rate at M would break rule 2.
 *    Waiting cannot change that verdict, so a canary failing 30% of its requests is aborted within
 *    its first handful of errors rather than after M requests (Argo's consecutiveErrorLimit idea,
 *    applied to the requests themselves).
 * 4. With n >= M and a baseline of at least M requests, the canary fails when its p99 is above
 *    limits.maxP99Ratio times the baseline's AND above it by more than P99_FLOOR_MS (5 ms): 0.6 ms
 *    against 0.3 ms is twice as slow and no one's problem, and below a few ms the histogram's
 *    buckets and the scheduler's noise decide the ratio, not the service. Without such a baseline
 *    (a new service, a guard whose old hash never served), p99 is not judged and the reason says so.
 * 5. Otherwise: pass with n >= M, else wait ("inconclusive: 37 of 200 requests"). Inconclusive is
 *    never a pass: a step with too little traffic waits, however long its step time is over.
 */
import { HashdError } from "../lib/errors.ts";
import { isStoreHash } from "./names.ts";
import { errorRate, quantileMs, type RequestCounts } from "./request-stats.ts";
import {
  ROLLOUT_BOUNDS,
  ROLLOUT_DEFAULTS,
  type RolloutLimits,
  type RolloutState,
  rolloutProblem,
} from "./rollout-state.ts";

/** A p99 at most this much slower than the baseline's never fails, whatever the ratio (rule 4). */
export const P99_FLOOR_MS = 5;

/** The numbers behind a verdict (undefined: no requests, or not judged). */
export interface JudgedNumbers {
  requests: number;
  /** errors + failures */
  errors: number;
  errorRate: number | undefined;
  p99Ms: number | undefined;
  baselineRequests: number;
  /** the baseline's error rate as rule 1 counts it (undefined: fewer than minRequests) */
  baselineErrorRate: number | undefined;
  /** the baseline's p99 as rule 4 compares it (undefined: not judged) */
  baselineP99Ms: number | undefined;
}

export type Verdict = "pass" | "wait" | "fail";

export interface Judgement {
  verdict: Verdict;
  /** the rule and its numbers, e.g. "error rate 31.2% over 1,204 requests vs 0.1% baseline, limit 1%" */
  reason: string;
  numbers: JudgedNumbers;
}

/**
 * The verdict on a canary's counts over a window against the baseline's (the same window's, or
 * when that has too few requests the baseline's lifetime counts: the caller picks). The rules are
 * in this file's header.
 */
export function judge(
  canary: RequestCounts,
  baseline: RequestCounts | undefined,
  limits: RolloutLimits,
): Judgement {
  const { maxErrorRate, maxP99Ratio, minRequests } = limits;
  const n = canary.requests;
  const e = canary.errors + canary.failures;
  const baseRequests = baseline?.requests ?? 0;
  const solidBase = baseline !== undefined && baseRequests >= minRequests;
  const b = solidBase ? (errorRate(baseline) ?? 0) : 0;
  const baseP99 = solidBase ? quantileMs(baseline, 0.99) : undefined;
  const judged = n >= minRequests;
  const p99 = judged ? quantileMs(canary, 0.99) : undefined;
  const numbers: JudgedNumbers = {
    requests: n,
    errors: e,
    errorRate: n > 0 ? e / n : undefined,
    p99Ms: p99,
    baselineRequests: baseRequests,
    baselineErrorRate: solidBase ? b : undefined,
    baselineP99Ms: judged ? baseP99 : undefined,
  };
  const rate = numbers.errorRate ?? 0;
  const vsBase = solidBase ? `vs ${percent(b)} baseline` : "vs no baseline";
  const errorText = `error rate ${percent(rate)} over ${count(n)} requests ${vsBase}, limit ${percent(maxErrorRate)}`;
  const allowed = maxErrorRate + b;

  if (!judged) {
    // rule 3: more errors than minRequests requests may have
    if (e > allowed * minRequests + EPSILON)
      return {
        verdict: "fail",
        reason: `${errorText}: ${count(e)} errors, more than ${count(minRequests)} requests may have`,
        numbers,
      };
    return {
      verdict: "wait",
      reason: `inconclusive: ${count(n)} of ${count(minRequests)} requests`,
      numbers,
    };
  }
  // rule 2
  if (rate > allowed + EPSILON) return { verdict: "fail", reason: errorText, numbers };
  // rule 4
  let p99Text: string;
  if (p99 === undefined || baseP99 === undefined) {
    p99Text = solidBase
      ? "p99 not judged (no latencies)"
      : `p99 not judged (baseline ${count(baseRequests)} of ${count(minRequests)} requests)`;
  } else {
    const ratio = baseP99 > 0 ? p99 / baseP99 : p99 > 0 ? Number.POSITIVE_INFINITY : 1;
    const slower = p99 > maxP99Ratio * baseP99 + EPSILON && p99 - baseP99 > P99_FLOOR_MS;
    const head = `p99 ${ms(p99)} vs ${ms(baseP99)} baseline (${times(ratio)}`;
    if (slower)
      return {
        verdict: "fail",
        reason: `${head}, limit ${times(maxP99Ratio)}) over ${count(n)} requests`,
        numbers,
      };
    p99Text = `${head})`;
  }
  return { verdict: "pass", reason: `${errorText}; ${p99Text}`, numbers };
}

/** Float slack for the comparisons at a limit: exactly at the limit passes. */
const EPSILON = 1e-9;

export type RolloutAction =
  | { kind: "wait" }
  | { kind: "advance"; state: RolloutState }
  | { kind: "finish"; state: RolloutState }
  | { kind: "abort"; state: RolloutState };

/**
 * What the driver does with a rollout at `now` given the judgement of its current step:
 * - a rollout that is not running (paused, aborted, done) never moves: wait;
 * - a failing judgement aborts at once, whatever the step's time: status "aborted", the note says
 *   where and why (the alias goes back to 100% of `from`: `rolloutWrite` in the driver);
 * - before the step's stepTimeMs has passed since stepSince, or with an inconclusive judgement: wait;
 * - a pass after the step time: the next step exactly (step + 1, stepSince = now), or, after the last
 *   step, status "done". A step is never skipped: the index comes from the state alone.
 */
export function nextAction(state: RolloutState, now: number, judgement: Judgement): RolloutAction {
  if (state.status !== "running") return { kind: "wait" };
  const here = stepName(state, state.step);
  if (judgement.verdict === "fail") {
    const note =
      state.kind === "guard"
        ? `guard aborted, back to ${short(state.from)}: ${judgement.reason}`
        : `aborted at ${here}: ${judgement.reason}`;
    return { kind: "abort", state: { ...state, status: "aborted", note: clip(note) } };
  }
  if (now - state.stepSince < state.stepTimeMs || judgement.verdict !== "pass") return { kind: "wait" };
  if (state.step >= state.steps.length - 1) {
    const note =
      state.kind === "guard"
        ? `guard passed after ${duration(state.stepTimeMs)}: ${judgement.reason}`
        : `done: ${here} passed: ${judgement.reason}`;
    return { kind: "finish", state: { ...state, status: "done", note: clip(note) } };
  }
  const step = state.step + 1;
  const note = `${stepName(state, step)} after step ${state.step + 1} passed: ${judgement.reason}`;
  return { kind: "advance", state: { ...state, step, stepSince: now, note: clip(note) } };
}

/** "step 2 (25%)": steps are numbered from 1 in text. */
export function stepName(state: Pick<RolloutState, "steps">, step: number): string {
  return `step ${step + 1} (${state.steps[step] ?? 100}%)`;
}

/**
 * The member that drives the running rollouts: the alive member with the lowest name, when the
 * alive members are a strict majority of the known ones (every member ever known and not left);
 * else none. An isolated host never drives alone, and of two sides of a partition at most one has
 * a majority, so two drivers never write at once (each side sees its own alive members).
 */
export function electDriver(alive: readonly string[], knownCount: number): string | undefined {
  if (alive.length === 0 || alive.length * 2 <= Math.max(knownCount, alive.length)) return undefined;
  let best = alive[0] as string;
  for (const m of alive) if (m < best) best = m;
  return best;
}

// --- flags ---------------------------------------------------------------------------------------

const bad = (message: string): HashdError => new HashdError("bad_request", message);

/** `--steps 5,25,50,100` (a trailing % on each is allowed): ascending integer percents ending at 100. */
export function parseSteps(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length > ROLLOUT_BOUNDS.maxSteps)
    throw bad(`--steps: at most ${ROLLOUT_BOUNDS.maxSteps} steps, got ${parts.length}`);
  const steps: number[] = [];
  for (const p of parts) {
    const m = /^(\d{1,3})%?$/.exec(p);
    const v = m ? Number(m[1]) : Number.NaN;
    if (!(v >= 1 && v <= 100))
      throw bad(
        `--steps: ${JSON.stringify(p)} is not a percentage from 1 to 100 (expected e.g. 5,25,50,100)`,
      );
    const last = steps[steps.length - 1];
    if (last !== undefined && v <= last) throw bad(`--steps: must ascend, ${v} comes after ${last}`);
    steps.push(v);
  }
  if (steps[steps.length - 1] !== 100) throw bad("--steps: the last step must be 100");
  return steps;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** "500ms", "60s", "1.5s", "2m", "1h" → milliseconds (integer). A unit is required. */
export function parseDuration(text: string, flag = "duration"): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw bad(`${flag}: ${JSON.stringify(text)} is not a duration (expected e.g. 500ms, 60s, 2m, 1h)`);
  const v = Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] as number));
  if (!Number.isSafeInteger(v)) throw bad(`${flag}: ${JSON.stringify(text)} is too long`);
  return v;
}

/** "1%", "0.5%" → a fraction (0.01, 0.005), from 0% to 100%. The % is required. */
export function parsePercent(text: string, flag = "percentage"): number {
  const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text.trim());
  const v = m ? Number(m[1]) : Number.NaN;
  if (!(v >= 0 && v <= 100))
    throw bad(
      `${flag}: ${JSON.stringify(text)} is not a percentage from 0% to 100% (expected e.g. 1% or 0.5%)`,
    );
  return v / 100;
}

export interface StartRolloutArgs {
  /** the alias's hash now (the baseline) */
  from: string;
  /** the canary */
  to: string;
  now: number;
  steps?: number[];
  stepTimeMs?: number;
  intervalMs?: number;
  limits?: Partial<RolloutLimits>;
}

/** A running rollout at its first step, with ROLLOUT_DEFAULTS for what `args` leaves out; checked. */
export function startRollout(args: StartRolloutArgs): RolloutState {
  const d = ROLLOUT_DEFAULTS;
  const steps = [...(args.steps ?? d.steps)];
  return checked({
    kind: "rollout",
    from: args.from,
    to: args.to,
    steps,
    step: 0,
    stepSince: args.now,
    stepTimeMs: args.stepTimeMs ?? d.stepTimeMs,
    intervalMs: args.intervalMs ?? d.intervalMs,
    limits: { ...d.limits, ...definedOnly(args.limits) },
    status: "running",
    note: `${stepName({ steps }, 0)} started`,
    startedAt: args.now,
  });
}

export interface StartGuardArgs {
  from: string;
  to: string;
  now: number;
  /** how long to watch `to` (default ROLLOUT_DEFAULTS.guardMs) */
  watchMs?: number;
  intervalMs?: number;
  limits?: Partial<RolloutLimits>;
}

/** A guarded switch: 100% to `to` at once, watched for watchMs, switched back to `from` if it fails. */
export function startGuard(args: StartGuardArgs): RolloutState {
  const d = ROLLOUT_DEFAULTS;
  const stepTimeMs = args.watchMs ?? d.guardMs;
  return checked({
    kind: "guard",
    from: args.from,
    to: args.to,
    steps: [100],
    step: 0,
    stepSince: args.now,
    stepTimeMs,
    intervalMs: args.intervalMs ?? d.intervalMs,
    limits: { ...d.limits, ...definedOnly(args.limits) },
    status: "running",
    note: `guard: watching ${short(args.to)} for ${duration(stepTimeMs)}`,
    startedAt: args.now,
  });
}

function checked(state: RolloutState): RolloutState {
  const problem = rolloutProblem(state, isStoreHash);
  if (problem !== null) throw bad(problem);
  return state;
}

function definedOnly(limits: Partial<RolloutLimits> | undefined): Partial<RolloutLimits> {
  const out: Partial<RolloutLimits> = {};
  if (limits?.maxErrorRate !== undefined) out.maxErrorRate = limits.maxErrorRate;
  if (limits?.maxP99Ratio !== undefined) out.maxP99Ratio = limits.maxP99Ratio;
  if (limits?.minRequests !== undefined) out.minRequests = limits.minRequests;
  return out;
}

/**
 * One line for `hashd rollout status` and the status page, e.g.
 * "rollout 0a1b2c3d → 9z8y7x6w running, step 2 of 4 (25%) for 12 s of 60 s: step 2 (25%) after ..."
 * (`now` adds how long the step has run).
 */
export function describeRollout(state: RolloutState, now?: number): string {
  const what = state.kind === "guard" ? "guard" : "rollout";
  const head = `${what} ${short(state.from)} → ${short(state.to)} ${state.status}`;
  let where = "";
  if (state.status === "running" || state.status === "paused") {
    const weight = state.steps[state.step] ?? 100;
    where =
      state.kind === "guard"
        ? ", watching"
        : `, step ${state.step + 1} of ${state.steps.length} (${weight}%)`;
    if (now !== undefined && state.status === "running")
      where += ` for ${duration(Math.max(0, now - state.stepSince))} of ${duration(state.stepTimeMs)}`;
  }
  return state.note === "" ? `${head}${where}` : `${head}${where}: ${state.note}`;
}

// --- numbers as text -----------------------------------------------------------------------------

const short = (hash: string): string => hash.slice(0, 8);

const clip = (note: string): string =>
  note.length <= ROLLOUT_BOUNDS.noteChars ? note : `${note.slice(0, ROLLOUT_BOUNDS.noteChars - 1)}…`;

/** 1204 → "1,204" */
export function count(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** 0.312 → "31.2%", 0.01 → "1%", 0.001 → "0.1%", 0.00012 → "0.012%" */
export function percent(fraction: number): string {
  const v = fraction * 100;
  if (v === 0) return "0%";
  const text = v >= 1 ? v.toFixed(1) : v.toPrecision(2);
  return `${Number(text)}%`;
}

/** 412.3 → "412 ms", 2.34 → "2.3 ms", 0.31 → "0.31 ms", Infinity → "over 131 s" */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return "over the largest bucket";
  if (v >= 10) return `${Math.round(v)} ms`;
  if (v >= 1) return `${Number(v.toFixed(1))} ms`;
  return `${Number(v.toPrecision(2))} ms`;
}

/** 5.15 → "5.2x", 1.5 → "1.5x" */
const times = (r: number): string => (Number.isFinite(r) ? `${Number(r.toFixed(1))}x` : "∞x");

/** 60000 → "60 s", 500 → "500 ms", 90000 → "90 s", 3600000 → "60 min" */
export function duration(msValue: number): string {
  if (msValue < 1_000) return `${Math.round(msValue)} ms`;
  if (msValue < 120_000) return `${Number((msValue / 1_000).toFixed(1))} s`;
  return `${Number((msValue / 60_000).toFixed(1))} min`;
}
