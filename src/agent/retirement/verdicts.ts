import type { DeploymentState } from "../../model/deployment.ts";
import type { MemberStatus } from "../gossip/index.ts";

/**
 * The planner's verdict on a hash as data: why it is wanted, kept, blocked or retiring. The text
 * users read (status page, `kept` events, `hashd show`) is made from it by `describeVerdict` alone,
 * and the retirer compares verdicts as data (`sameVerdict`), never as text.
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
 * Whether two verdicts say the same: the same kind with the same facts, except how long a hash has
 * been quiet, which grows on every tick (the retirer records a `kept` event per change of verdict).
 */
export function sameVerdict(a: VerdictCause, b: VerdictCause): boolean {
  if (a.kind === "quiet" || b.kind === "quiet")
    return a.kind === "quiet" && b.kind === "quiet" && a.quietMs === b.quietMs;
  return sameData(a, b);
}

/** Structural equality of plain data (objects of strings and numbers). */
function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
