/**
 * The retirer's decision step, with no I/O: from what the retirer reads on a tick (the clock, the
 * cluster view, the alias table, this host's deployment rows, its activations under way), what it
 * does: the planner's actions it carries out, the `kept` events it records, the members it saves.
 * Retirer.tick (retirer.ts) gathers the input, calls `plan` and performs the result on systemd,
 * Nix and the database; the retirement simulator (test/sim/retirement) calls the same `plan` on
 * its model of an agent and performs the result there, so the simulator runs the agent's own
 * decisions, not a copy of them.
 *
 * `plan` is a function of its input and of the retirer's memory (`RetirerMemory`: the planner's
 * quiet periods and members, the last verdict recorded per hash, the hashes whose closure is
 * gone), which it updates: that memory lives as long as the agent's process, like the planner's.
 */

import { type DeploymentState, LIVE_STATES } from "../../model/deployment.ts";
import type { FormerRoot, Root } from "../../model/roots.ts";
import type { RetentionPolicy } from "../aliases/alias-service.ts";
import {
  type Action,
  type MemberView,
  type PlannerInput,
  type PlannerResult,
  type RetiredHash,
  wantedIn,
} from "./planner.ts";
import { decisionOf } from "./verdicts.ts";
import { stickyRoots } from "./wanted.ts";

/** The planner as the retirer drives it: RetirementPlanner (a test may wrap or subclass it). */
export interface Planner {
  step(input: PlannerInput): PlannerResult;
  remember(names: Iterable<string>): void;
  knownMembers(): string[];
}

/** The facts of one deployment row the decision reads (a Deployment has them all). */
export interface PlanRow {
  hash: string;
  state: DeploymentState;
  refs: readonly string[];
  everWanted: boolean;
  reactivated: boolean;
  /** `hashd deactivate`: never activated again by the retirer */
  retiredByHand: boolean;
  /** when the current deployment began (its last activation) */
  activatedAt: number;
}

export interface PlanInput {
  now: number;
  /** every member this agent knows, itself included with its current report */
  members: readonly MemberView[];
  policy: RetentionPolicy;
  /** AliasService.roots(policy); `plan` adds sticky use (`stickyRoots` of `members`) */
  roots: readonly Root[];
  /** AliasService.formerRoots() */
  formerRoots: readonly FormerRoot[];
  /** every deployment row of this host */
  rows: readonly PlanRow[];
  /** activations under way here (Activator.activations()): refs null until read */
  activations: readonly { hash: string; refs: readonly string[] | null }[];
  /** hashes with an activation or a stop under way here (Activator.isBusy): left alone */
  busy: readonly string[];
}

/** An event to record on a hash (the answer to "why is this still running?"). */
export interface PlanEvent {
  hash: string;
  kind: "kept";
  message: string;
}

export interface Plan {
  /** the planner's actions and verdicts as it returned them */
  planned: PlannerResult;
  /** the actions to carry out now, in order: the planner's, but none on a busy hash, nor a revive of a hash whose closure is gone */
  actions: Action[];
  /** events to record before the actions: a `kept` per change of decision of a hash once wanted */
  events: PlanEvent[];
  /** the members the planner counts its majority of, to save when they changed (else null; then `RetirerMemory.membersSaved`) */
  knownMembers: string[] | null;
}

/** What the retirer remembers from tick to tick; a restarted agent starts a new one. */
export class RetirerMemory {
  /** the decision (`decisionOf`) last recorded as an event, per hash */
  readonly lastDecisions = new Map<string, string>();
  /** hashes wanted again whose closure is gone from the store (told once, not looked for again) */
  readonly unrevivable = new Set<string>();
  /** the planner's known members as last saved */
  savedMembers: string;

  /** `saved`: the members kept in the database (a restarted agent's gossip view starts empty: the planner's majority must not) */
  constructor(
    readonly planner: Planner,
    saved: Iterable<string>,
  ) {
    planner.remember(saved);
    this.savedMembers = planner.knownMembers().join(" ");
  }

  /** The members `plan` returned were saved (until then, every plan returns them again). */
  membersSaved(names: readonly string[]): void {
    this.savedMembers = names.join(" ");
  }

  /** A revive found the hash's closure gone: not looked for again until it is unwanted again. */
  closureGone(hash: string): void {
    this.unrevivable.add(hash);
  }
}

/** Everything Retirer.tick decides, from what it read. */
export function plan(memory: RetirerMemory, input: PlanInput): Plan {
  const live = input.rows.filter((d) => LIVE_STATES.has(d.state));
  const planned = memory.planner.step({
    now: input.now,
    members: input.members,
    roots: rootsAt(input.roots, input.members, input.now),
    formerRoots: input.formerRoots,
    local: live.map((d) => ({
      hash: d.hash,
      state: d.state,
      keepForever: input.policy.kind === "keep",
      everWanted: d.everWanted,
      reactivated: d.reactivated,
      since: d.activatedAt,
    })),
    retired: retiredByRetirer(input.rows),
    unresolved: input.activations.filter((a) => a.refs === null).map((a) => a.hash),
  });

  const revived = new Set(planned.actions.filter((a) => a.kind === "revive").map((a) => a.hash));
  for (const hash of memory.unrevivable) if (!revived.has(hash)) memory.unrevivable.delete(hash);

  const known = memory.planner.knownMembers();
  const key = known.join(" ");
  const knownMembers = key === memory.savedMembers ? null : known;

  const events = verdictChanges(
    memory,
    planned,
    new Set(live.filter((d) => d.everWanted).map((d) => d.hash)),
  );

  const busy = new Set(input.busy);
  const actions = planned.actions.filter(
    (a) => !busy.has(a.hash) && !(a.kind === "revive" && memory.unrevivable.has(a.hash)),
  );
  return { planned, actions, events, knownMembers };
}

/**
 * One `kept` event per change of decision (`decisionOf`: not of the numbers in the verdict's text)
 * of a hash once wanted here, for those not wanted; a hash never wanted here is kept by design and
 * says so only in its verdict. The event's message is the verdict's text at that moment.
 */
function verdictChanges(memory: RetirerMemory, planned: PlannerResult, retirable: Set<string>): PlanEvent[] {
  const events: PlanEvent[] = [];
  const { lastDecisions } = memory;
  for (const [hash, v] of planned.verdicts) {
    if (!retirable.has(hash)) continue;
    const decision = decisionOf(v.cause);
    if (lastDecisions.get(hash) === decision) continue;
    lastDecisions.set(hash, decision);
    if (!v.wanted) events.push({ hash, kind: "kept", message: v.reason });
  }
  for (const hash of lastDecisions.keys()) if (!planned.verdicts.has(hash)) lastDecisions.delete(hash);
  return events;
}

/** What the retirer reads again right before it stops the units of a hash it retires. */
export interface StopFacts {
  /** the clock now (sticky use ends at a time) */
  now: number;
  /** the hash's row as it is now (undefined: gone) */
  row: { state: DeploymentState; generation: number } | undefined;
  /** AliasService.roots(policy) as it is now */
  roots: readonly Root[];
  /** the cluster view as it is now */
  members: readonly MemberView[];
  /** every deployment row of this host, as it is now */
  rows: readonly PlanRow[];
}

export type StopDecision =
  | { stop: true }
  /** leave it: no longer draining at the generation planned on (silently), or wanted again (`kept`) */
  | { stop: false; event?: PlanEvent };

/**
 * Whether to go on with the retirement of `hash`, planned on its row at `generation`, right before
 * its units stop: an alias write (a rollback) or an activation that arrived since the plan keeps
 * it. (One that arrives while the units stop is healed afterwards: the planner's `revive`.)
 */
export function beforeStop(hash: string, generation: number, facts: StopFacts): StopDecision {
  if (facts.row?.state !== "draining" || facts.row.generation !== generation) return { stop: false };
  const roots = rootsAt(facts.roots, facts.members, facts.now);
  const why = wantedIn(roots, facts.members, retiredByRetirer(facts.rows)).get(hash);
  if (why === undefined) return { stop: true };
  return {
    stop: false,
    event: { hash, kind: "kept", message: `not retired: wanted again since the planner ran (${why})` },
  };
}

/**
 * The roots the planner walks from: the alias service's (aliases, every target of a weighted
 * alias, the baseline of a rollout under way, pins, policy), then the hashes with sticky clients
 * that may still come back (any member's report, this host's included).
 */
function rootsAt(roots: readonly Root[], members: readonly MemberView[], now: number): Root[] {
  const sticky = stickyRoots(members, now);
  return sticky.length === 0 ? [...roots] : [...roots, ...sticky];
}

/** Rows the retirer retired (not deactivated by hand): brought back when wanted again. */
function retiredByRetirer(rows: readonly PlanRow[]): RetiredHash[] {
  return rows
    .filter((d) => d.state === "retired" && !d.retiredByHand)
    .map((d) => ({ hash: d.hash, refs: d.refs }));
}
