import type { DeploymentState } from "../../model/deployment.ts";
import type { MemberStatus } from "../gossip/index.ts";

/**
 * The planner's verdict on a hash as data: why it is wanted, kept, blocked or retiring. The text
 * users read (status page, `kept` events, `hashd show`) is made from it by `describeVerdict` alone,
 * with the numbers of the moment (in flight, holds, members seen, time quiet). The retirer records
 * a `kept` event per change of decision (`decisionOf`: the kind and the hashes or members that
 * decide it, never a count or a time), so the event table grows with decisions, not with ticks.
 */
export type VerdictCause =
  /** an alias, pin or policy root reaches it; `because` says how (wanted.ts) */
  | { kind: "wanted"; because: string }
  /** retired here, wanted again: activated again from the local store */
  | { kind: "revived"; because: string }
  /** activated again by hand after it was wanted: kept until wanted again */
  | { kind: "reactivated" }
  /** never wanted here, but the evidence says it was wanted once (this host missed the alias) */
  | { kind: "wanted-once"; evidence: WantedOnce }
  /** never wanted here: a fresh deployment waiting for its alias, kept until deactivated */
  | { kind: "never-wanted" }
  /** unwanted under retention policy "keep" */
  | { kind: "kept-by-policy" }
  /** unwanted and draining, but something keeps it running */
  | { kind: "blocked"; blocker: Blocker }
  /** unwanted, draining and unblocked for `quietForMs` of the `quietMs` it must be */
  | { kind: "quiet"; quietForMs: number; quietMs: number }
  /** unwanted, draining and quiet long enough: retired now */
  | { kind: "retiring" };

/** Why a copy never wanted here was wanted once. */
export type WantedOnce =
  /** another member reports it so (only a hash once wanted there drains or retires there) */
  | { kind: "reported"; member: string; state: "draining" | "retired" }
  /** an earlier target of an alias or pin (or a hash one references) written after it was deployed */
  | { kind: "former-target"; because: string };

/** What keeps an unwanted, draining hash from retiring. */
export type Blocker =
  | { kind: "no-majority"; visible: number; known: number }
  | { kind: "unreported"; member: string; status: MemberStatus }
  | { kind: "busy"; member: string; status: MemberStatus; inFlight: number; holds: number }
  | { kind: "dependent"; member: string; status: MemberStatus; dependent: string; state: DeploymentState }
  /** an activation here that has not read its references yet */
  | { kind: "unresolved"; activation: string };

export interface Verdict {
  wanted: boolean;
  /** why the hash is running, draining, or not yet retired: the answer to "why is this still up?" */
  reason: string;
  cause: VerdictCause;
}

export function verdictOf(cause: VerdictCause): Verdict {
  return {
    wanted: cause.kind === "wanted" || cause.kind === "revived",
    reason: describeVerdict(cause),
    cause,
  };
}

export function describeVerdict(c: VerdictCause): string {
  switch (c.kind) {
    case "wanted":
      return `wanted: ${c.because}`;
    case "revived":
      return `wanted again: ${c.because}; activated again here`;
    case "reactivated":
      return "activated again by hand: kept until an alias or pin wants it again, or deactivated";
    case "wanted-once":
      return `never aliased or pinned here, but ${describeWantedOnce(c.evidence)}`;
    case "never-wanted":
      return "never aliased or pinned: kept until deactivated";
    case "kept-by-policy":
      return "unwanted, kept scaled to zero by retention policy";
    case "blocked":
      return `draining, kept: ${describeBlocker(c.blocker)}`;
    case "quiet":
      return `draining, quiet for ${c.quietForMs} ms of ${c.quietMs}`;
    case "retiring":
      return "retired: unwanted, unreferenced and idle everywhere";
  }
}

/** Also the reason of the planner's `wanted` action for such a copy. */
export function describeWantedOnce(e: WantedOnce): string {
  return e.kind === "reported"
    ? `${e.state} on ${e.member}, so wanted once there`
    : `${e.because}, deployed here before the alias moved on`;
}

export function describeBlocker(b: Blocker): string {
  switch (b.kind) {
    case "no-majority":
      return `sees ${b.visible} of ${b.known} members, not a majority (partition?)`;
    case "unreported":
      return `no report from ${where(b)} yet (it just joined or restarted)`;
    case "busy":
      return `${b.inFlight} in flight and ${b.holds} hold(s) on ${where(b)}`;
    case "dependent":
      return `dependent ${b.dependent} is ${b.state} on ${where(b)}`;
    case "unresolved":
      return `activation of ${b.activation} here has not read its references yet`;
  }
}

const where = (b: { member: string; status: MemberStatus }) =>
  `${b.member}${b.status === "alive" ? "" : ` (${b.status})`}`;

/**
 * The decision a verdict records, as a key: its kind and the hashes or members that decide it,
 * without counts or times, which change on every tick in a busy cluster (in-flight requests,
 * holds, members seen, time quiet, the end of sticky use). The retirer records a `kept` event
 * when this key changes and keeps the text (with the numbers of that moment) for display; the
 * status page reads the latest verdict, so its numbers stay current.
 *
 * A draining hash waiting for its work to end is one decision, whether work is in flight or held
 * on some member at this tick (`busy`, whichever member has it) or none is and the quiet period
 * runs (`quiet`): requests come and go many times a minute, and each of those changes would
 * otherwise be an event. A dependent, a member not yet reported, an activation under way, the
 * lack of a majority, or wanted again are other decisions; a dependent that starts draining is
 * one too, but not which member runs it nor whether it is ready, idle or activating.
 */
export function decisionOf(c: VerdictCause): string {
  switch (c.kind) {
    case "wanted":
    case "revived":
    case "reactivated":
    case "never-wanted":
    case "kept-by-policy":
    case "retiring":
      return c.kind;
    case "wanted-once":
      return c.evidence.kind === "reported"
        ? `wanted-once reported ${c.evidence.member} ${c.evidence.state}`
        : `wanted-once former ${c.evidence.because}`;
    case "quiet":
      return AWAITING_IDLE;
    case "blocked":
      return blockerDecision(c.blocker);
  }
}

const AWAITING_IDLE = "draining: awaiting idle";

function blockerDecision(b: Blocker): string {
  switch (b.kind) {
    case "busy":
      return AWAITING_IDLE;
    case "no-majority":
      return "blocked no-majority";
    case "unreported":
      return `blocked unreported ${b.member}`;
    case "dependent":
      // which member runs it, and ready, idle or activating, change with the idle scaler and
      // deploys; a dependent that drains is on its way out, a step worth telling
      return `blocked dependent ${b.dependent}${b.state === "draining" ? " draining" : ""}`;
    case "unresolved":
      return `blocked unresolved ${b.activation}`;
  }
}

/** Whether two verdicts record the same decision (`decisionOf`), whatever their numbers. */
export function sameVerdict(a: VerdictCause, b: VerdictCause): boolean {
  return decisionOf(a) === decisionOf(b);
}

/**
 * The reason a hash's gossip report carries: the verdict's text as it was when its decision last
 * changed, so a report does not change (and is not published again) on every tick only because a
 * count or a time in the text moved. Keeps one entry per hash it is asked about; `prune` drops the
 * hashes without a verdict.
 */
export class DecisionReasons {
  private readonly held = new Map<string, { decision: string; reason: string }>();

  reasonOf(hash: string, verdict: Verdict | undefined): string | undefined {
    if (verdict === undefined) {
      this.held.delete(hash);
      return undefined;
    }
    const decision = decisionOf(verdict.cause);
    const held = this.held.get(hash);
    if (held?.decision === decision) return held.reason;
    this.held.set(hash, { decision, reason: verdict.reason });
    return verdict.reason;
  }

  prune(verdicts: ReadonlyMap<string, Verdict>): void {
    for (const hash of this.held.keys()) if (!verdicts.has(hash)) this.held.delete(hash);
  }
}
