/**
 * The rollout driver: the thin effect step of staged rollouts and guarded switches. The decisions
 * are model/rollout.ts's pure functions (`electDriver`, `judge`, `nextAction`); this class reads
 * the cluster through `RolloutIo` (members, winning alias records, every member's request counts),
 * keeps the readings a window is measured from, and carries each decision out as ONE alias write
 * that holds the new weights and the rollout's new progress together.
 *
 * Exactly one member drives: the alive member with the lowest name, when it sees a strict majority
 * of the known members. Every agent ticks a driver; the others do nothing and forget what they
 * measured. A member that takes over (the driver died, or came back after a partition) starts from
 * the step recorded in the alias record with a fresh reading of the counts: the step's time still
 * runs from the record's `stepSince`, but its judgement covers only what the new driver has
 * measured itself, so a takeover late in a step waits for minRequests new requests. The step index
 * only ever comes from the record, and a write moves it by one, so no step is skipped or repeated.
 */

import { type AliasRecord, type AliasTarget, heaviestOf } from "../../model/alias-record.ts";
import { addCounts, countsDelta, emptyCounts, type RequestCounts } from "../../model/request-stats.ts";
import { electDriver, type Judgement, judge, nextAction, stepName } from "../../model/rollout.ts";
import { type RolloutState, splitAtStep } from "../../model/rollout-state.ts";

/** Event kinds the driver records (on the canary's hash). */
export const ROLLOUT_EVENTS = {
  advanced: "rollout-advanced",
  done: "rollout-done",
  aborted: "rollout-aborted",
  /** a step's time is over but its numbers are inconclusive: told once per step */
  waiting: "rollout-waiting",
} as const;

/** What the driver reads and does; the agent's wiring implements it on the cluster and alias service. */
export interface RolloutIo {
  /** this member's name */
  self(): string;
  /** the names of the members alive now, this one included */
  aliveMembers(): string[];
  /** every member ever known and not left, this one included (the majority is counted of these) */
  knownMemberCount(): number;
  /** the winning record of every alias */
  aliasRecords(): AliasRecord[];
  /** every alive member's latest reported counts for `hash`, by member name (this host's included) */
  countsOf(hash: string): Map<string, RequestCounts>;
  /**
   * One alias write: `hash` (the heaviest target) with `split` (undefined: 100% to `hash`) and
   * the rollout's new state. `basis` is the record the decision was made on: the wiring drops the
   * write when the alias's winning record is no longer it (a `hashd alias set`, pause or abort that
   * arrived since the tick read the table) and answers false.
   */
  write(
    name: string,
    hash: string,
    split: AliasTarget[] | undefined,
    rollout: RolloutState,
    basis: AliasRecord,
  ): boolean;
  /** an event for the log, on the canary's hash */
  event(kind: string, message: string, hash?: string): void;
  /** wall-clock ms */
  now(): number;
}

/** The alias's value for a rollout state: the split at its step, 100% of `to`, or 100% of `from` once aborted. */
export function rolloutWrite(state: RolloutState): { hash: string; split: AliasTarget[] | undefined } {
  if (state.status === "aborted") return { hash: state.from, split: undefined };
  const split = splitAtStep(state);
  if (split === null) return { hash: state.to, split: undefined };
  return { hash: heaviestOf(split), split };
}

/** One member's counts of the two hashes when the window began, and when that was. */
interface Reading {
  takenAt: number;
  canary: Map<string, RequestCounts>;
  baseline: Map<string, RequestCounts>;
}

/** What the driver remembers of one step of one rollout. */
interface StepMemory {
  reading: Reading;
  judgedAt: number;
  /** the rollout-waiting event was told for this step */
  toldWaiting: boolean;
  last?: Judgement;
}

export class RolloutDriver {
  /** keyed by `stepKey`: a new step, or another rollout of the same alias, starts afresh */
  private readonly memory = new Map<string, StepMemory>();

  constructor(private readonly io: RolloutIo) {}

  /** The last judgement of the step `state` is at, if this member judged it (status page, tests). */
  lastJudgement(alias: string, state: RolloutState): Judgement | undefined {
    return this.memory.get(stepKey(alias, state))?.last;
  }

  /** Whether this member drives the running rollouts now. */
  drives(): boolean {
    const { io } = this;
    return electDriver(io.aliveMembers(), io.knownMemberCount()) === io.self();
  }

  /**
   * One round: if this member is the driver, every running rollout is judged at most once per its
   * intervalMs, and its next action (advance, finish, abort) carried out with one write.
   */
  tick(): void {
    const { io } = this;
    const current = new Set<string>();
    if (this.drives()) {
      for (const record of io.aliasRecords()) {
        const state = record.rollout;
        if (state === undefined || state.status !== "running" || record.hash === null) continue;
        const key = stepKey(record.name, state);
        current.add(key);
        const next = this.drive(record, state, key);
        if (next !== undefined) current.add(next);
      }
    }
    // rollouts that ended, moved on, or that another member drives now
    for (const key of this.memory.keys()) if (!current.has(key)) this.memory.delete(key);
  }

  /** Judges one running rollout and acts; returns the key of the step it moved to, if any. */
  private drive(record: AliasRecord, state: RolloutState, key: string): string | undefined {
    const { io } = this;
    const now = io.now();
    const m = this.memory.get(key);
    if (m === undefined) {
      // a new step, or a takeover: the window starts now
      this.memory.set(key, { reading: this.read(state, now), judgedAt: now, toldWaiting: false });
      return undefined;
    }
    if (now - m.judgedAt < state.intervalMs) return undefined;
    m.judgedAt = now;
    const judgement = this.judgeWindow(state, m.reading);
    m.last = judgement;
    const action = nextAction(state, now, judgement);
    if (action.kind === "wait") {
      if (!m.toldWaiting && judgement.verdict === "wait" && now - state.stepSince >= state.stepTimeMs) {
        m.toldWaiting = true;
        io.event(
          ROLLOUT_EVENTS.waiting,
          `${record.name}: ${stepName(state, state.step)} waits past its step time: ${judgement.reason}`,
          state.to,
        );
      }
      return undefined;
    }
    const w = rolloutWrite(action.state);
    this.memory.delete(key);
    // the alias moved meanwhile: nothing was written, the next tick reads the new record
    if (!io.write(record.name, w.hash, w.split, action.state, record)) return undefined;
    const kind =
      action.kind === "advance"
        ? ROLLOUT_EVENTS.advanced
        : action.kind === "finish"
          ? ROLLOUT_EVENTS.done
          : ROLLOUT_EVENTS.aborted;
    io.event(kind, `${record.name}: ${action.state.note}`, state.to);
    if (action.kind !== "advance") return undefined;
    // the next step's window starts with the write (its record may take a tick to be read back)
    const nextKey = stepKey(record.name, action.state);
    this.memory.set(nextKey, { reading: this.read(action.state, now), judgedAt: now, toldWaiting: false });
    return nextKey;
  }

  private read(state: RolloutState, now: number): Reading {
    return { takenAt: now, canary: this.io.countsOf(state.to), baseline: this.io.countsOf(state.from) };
  }

  /**
   * The judgement of the window since `reading`: the canary's requests summed over the members;
   * the baseline's over the same window when it has minRequests, else its lifetime counts (a
   * guard's old hash, or the last step's, gets no traffic to compare with).
   */
  private judgeWindow(state: RolloutState, reading: Reading): Judgement {
    const canary = windowOf(this.io.countsOf(state.to), reading.canary, reading.takenAt);
    const baselineNow = this.io.countsOf(state.from);
    const window = windowOf(baselineNow, reading.baseline, reading.takenAt);
    let baseline: RequestCounts | undefined = window;
    if (window.requests < state.limits.minRequests) {
      const lifetime = sum(baselineNow.values());
      baseline = lifetime.requests > 0 ? lifetime : undefined;
    }
    return judge(canary, baseline, state.limits);
  }
}

/** One rollout at one step: alias name, the rollout's start and canary, the step index. */
const stepKey = (alias: string, s: RolloutState): string => `${alias} ${s.startedAt} ${s.to} ${s.step}`;

/**
 * The counts summed over members since `before` (per member, `countsDelta`). A member missing from
 * the reading counts in full when it began counting after the reading (it joined, or restarted);
 * else its counts now become its reading (added to `before`), so the window never includes
 * requests from before it began.
 */
function windowOf(
  now: Map<string, RequestCounts>,
  before: Map<string, RequestCounts>,
  takenAt: number,
): RequestCounts {
  let total = emptyCounts(takenAt);
  for (const [member, counts] of now) {
    const prior = before.get(member);
    if (prior === undefined && counts.since < takenAt) {
      before.set(member, counts);
      continue;
    }
    total = addCounts(total, countsDelta(counts, prior));
  }
  return total;
}

function sum(list: Iterable<RequestCounts>): RequestCounts {
  let total = emptyCounts(0);
  for (const c of list) total = addCounts(total, c);
  return total;
}
