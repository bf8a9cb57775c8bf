import type { DeploymentState } from "../../model/deployment.ts";
import type { HashReport } from "../../model/reports.ts";
import type { FormerRoot, Root } from "../../model/roots.ts";
import type { MemberStatus } from "../gossip/index.ts";
import { type Blocker, describeWantedOnce, type Verdict, verdictOf, type WantedOnce } from "./verdicts.ts";
import { wantedHashes } from "./wanted.ts";

export type { Verdict } from "./verdicts.ts";

/** States in which a hash's socket exists, so it can still be called (and call others). */
const LIVE: ReadonlySet<DeploymentState> = new Set(["activating", "ready", "idle", "draining"]);
/**
 * States in which a hash keeps what it references: live, or "fetching", an activation under way
 * whose references are read but whose units do not exist yet (a new dependent half-installed
 * must not lose its dependency).
 */
export const RUNNING: ReadonlySet<DeploymentState> = new Set(["fetching", ...LIVE]);

export interface MemberView {
  name: string;
  status: MemberStatus;
  hashes: readonly HashReport[];
  /**
   * False while gossip holds no report from it: it just joined, or it restarted and the report
   * of its previous process is void, though the services it ran are still running. Nothing
   * retires until it has reported (missing means true).
   */
  reported?: boolean;
}

export interface LocalHash {
  hash: string;
  state: DeploymentState;
  /** retention policy "keep": never retired, only scaled to zero when unwanted */
  keepForever: boolean;
  /**
   * Whether an alias, pin or wanted dependent ever reached this hash here. A hash activated by
   * hand and never aliased is not "unwanted": nothing ever asked for it to retire.
   */
  everWanted: boolean;
  /**
   * Activated again by hand after it had been wanted (`hashd activate` of a draining, retired or
   * failed hash): like a fresh deployment, kept until an alias, pin or wanted dependent reaches
   * it again, and another member draining it does not make it wanted here.
   */
  reactivated?: boolean;
  /** when this host's deployment of it was first made (for formerRoots) */
  since?: number;
}

/** A hash the retirer retired here (not one deactivated by hand), with its references. */
export interface RetiredHash {
  hash: string;
  refs: readonly string[];
}

export interface PlannerInput {
  now: number;
  /** every member this agent knows, itself included (its own report is the freshest) */
  members: readonly MemberView[];
  roots: readonly Root[];
  /** earlier targets of aliases and pins (AliasService.formerRoots) */
  formerRoots?: readonly FormerRoot[];
  /** this host's live hashes */
  local: readonly LocalHash[];
  /**
   * Hashes the retirer retired here: one wanted again (a rollback that raced its retirement) is
   * activated again from the local store.
   */
  retired?: readonly RetiredHash[];
  /**
   * Activations under way here that have not read their references yet (the closure is being
   * copied): until they have, nothing retires here, since any hash could be one of them.
   */
  unresolved?: readonly string[];
}

export interface PlannerConfig {
  /** how long an unwanted hash must be idle and unreferenced on every member before it stops */
  quietMs: number;
  /**
   * How long the last reports of a member declared dead still hold a hash (default DEAD_GRACE_MS).
   * A member declared dead by mistake (a stale declaration from the other side of a healed
   * partition, a lost refutation) is alive again within seconds: until then its work and its
   * dependents still count, whatever the quiet period.
   */
  deadGraceMs?: number;
  /**
   * How long a member that left still counts in the majority (default LEFT_GRACE_MS). An agent
   * leaves on every stop, an upgrade included, and may be back at once on the far side of a
   * partition without this side hearing of it; only one gone this long counts as gone.
   */
  leftGraceMs?: number;
}

export const DEAD_GRACE_MS = 5000;
export const LEFT_GRACE_MS = 10 * 60_000;

export type Action =
  | { kind: "wanted"; hash: string; reason: string }
  | { kind: "drain"; hash: string; reason: string }
  | { kind: "undrain"; hash: string; reason: string }
  | { kind: "scale-to-zero"; hash: string; reason: string }
  | { kind: "retire"; hash: string; reason: string }
  /** activate again (from the local store) a hash retired here that is wanted again */
  | { kind: "revive"; hash: string; reason: string };

export interface PlannerResult {
  actions: Action[];
  verdicts: Map<string, Verdict>;
}

/**
 * Top-down retirement as a pure state machine (no I/O, `now` passed in), driven by the agent on
 * real gossip and by the simulator. A local hash is retired only when all of these hold for
 * `quietMs` without a break:
 * - it is not wanted (no alias, pin or policy root reaches it through references);
 * - no member that is alive or suspect runs a hash that references it (so dependents stop first:
 *   a frontend is retired before its backend, top-down);
 * - no alive or suspect member reports in-flight requests or holds on it (a member declared dead
 *   keeps holding with its last report for `deadGraceMs`, in case the declaration was a mistake),
 *   and every alive or suspect member has reported (one that restarted runs what it ran before);
 * - this agent sees a strict majority of the members it has ever known and not seen leave for
 *   `leftGraceMs` (even those gossip has since reaped, and those of before a restart: `remember`;
 *   an agent leaves on every stop, an upgrade included). In a partition
 *   the minority side never retires anything; the majority side does so only after the others
 *   are declared dead (their reports expire then, and only then).
 *
 * - no activation under way here has yet to read its references (it may be a new dependent).
 *
 * The quiet period starts when the hash drains: one brought back (activated again, or wanted
 * again) and then unwanted once more waits the whole period again.
 *
 * A hash never wanted here is kept (it may be a fresh deployment waiting for its alias), unless
 * another member reports it draining: then it was wanted there, and this host merely missed the
 * alias (it was down or cut off meanwhile); it is marked wanted-once and retires like the others.
 * A hash activated again by hand after it was wanted is kept the same way, but only an alias,
 * pin or wanted dependent makes it wanted again (the user asked for it here).
 *
 * A hash this agent retired that is wanted again (a rollback that raced the retirement, an alias
 * set back to it) is activated again from the local store: `revive`.
 */
export class RetirementPlanner {
  private readonly quietSince = new Map<string, number>();
  /**
   * Every member ever seen and not gone (left) for leftGraceMs. Gossip reaps dead members from its table (after
   * gossipToTheDeadMs) and a restarted agent's gossip view starts empty; counting the majority
   * of this set instead keeps a long partition or a restart from shrinking the cluster.
   */
  private readonly known = new Set<string>();
  /** when each member now dead was first seen dead */
  private readonly deadSince = new Map<string, number>();
  /** when each member that left was first seen gone (forgotten leftGraceMs later, unless back) */
  private readonly leftSince = new Map<string, number>();
  /**
   * When this planner first saw a member report each hash retired: only a copy deployed here
   * before then missed its alias; one deployed after (by hand, say to roll back to it) is new.
   */
  private readonly retiredSeen = new Map<string, number>();

  constructor(private readonly config: PlannerConfig) {}

  /** Members known before (the agent keeps knownMembers() in its database across restarts). */
  remember(names: Iterable<string>): void {
    for (const n of names) this.known.add(n);
  }

  knownMembers(): string[] {
    return [...this.known].sort();
  }

  step(input: PlannerInput): PlannerResult {
    const present = new Set<string>();
    for (const m of input.members) {
      present.add(m.name);
      this.known.add(m.name);
      if (m.status !== "left") this.leftSince.delete(m.name);
      else if (!this.leftSince.has(m.name)) this.leftSince.set(m.name, input.now);
      if (m.status !== "dead") this.deadSince.delete(m.name);
      else if (!this.deadSince.has(m.name)) this.deadSince.set(m.name, input.now);
    }
    for (const name of this.deadSince.keys()) if (!present.has(name)) this.deadSince.delete(name);
    for (const [name, since] of this.leftSince) {
      if (input.now - since < (this.config.leftGraceMs ?? LEFT_GRACE_MS)) continue;
      this.known.delete(name);
      this.leftSince.delete(name);
    }
    const visible = input.members.filter((m) => m.status === "alive" || m.status === "suspect");
    const grace = this.config.deadGraceMs ?? DEAD_GRACE_MS;
    const holding = input.members.filter(
      (m) =>
        m.status === "alive" ||
        m.status === "suspect" ||
        (m.status === "dead" && input.now - (this.deadSince.get(m.name) ?? input.now) < grace),
    );
    const wanted = wantedIn(input.roots, input.members, input.retired ?? []);
    const majority = visible.length * 2 > this.known.size;
    const actions: Action[] = [];
    const verdicts = new Map<string, Verdict>();
    const localHashes = new Set(input.local.map((l) => l.hash));
    for (const hash of this.quietSince.keys()) if (!localHashes.has(hash)) this.quietSince.delete(hash);

    for (const { hash } of input.retired ?? []) {
      const why = wanted.get(hash);
      if (why === undefined) continue;
      verdicts.set(hash, verdictOf({ kind: "revived", because: why }));
      actions.push({ kind: "revive", hash, reason: `wanted again after it retired here: ${why}` });
    }

    const reportedRetired = new Set<string>();
    for (const m of input.members)
      for (const r of m.hashes) if (r.state === "retired") reportedRetired.add(r.hash);
    for (const hash of reportedRetired)
      if (!this.retiredSeen.has(hash)) this.retiredSeen.set(hash, input.now);
    for (const hash of this.retiredSeen.keys()) if (!reportedRetired.has(hash)) this.retiredSeen.delete(hash);
    const formerlyWanted = input.formerRoots?.length
      ? formerTargets(input.formerRoots, input.members, input.retired ?? [])
      : undefined;
    const unresolved = input.unresolved ?? [];
    for (const local of input.local) {
      const { hash } = local;
      if (!LIVE.has(local.state)) continue;
      const why = wanted.get(hash);
      if (why !== undefined) {
        this.quietSince.delete(hash);
        verdicts.set(hash, verdictOf({ kind: "wanted", because: why }));
        if (!local.everWanted) actions.push({ kind: "wanted", hash, reason: why });
        if (local.state === "draining")
          actions.push({ kind: "undrain", hash, reason: `wanted again: ${why}` });
        continue;
      }
      if (!local.everWanted) {
        if (local.reactivated) {
          verdicts.set(hash, verdictOf({ kind: "reactivated" }));
          continue;
        }
        const former = formerlyWanted ? formerlyWanted(hash, local.since) : undefined;
        const evidence: WantedOnce | undefined =
          wantedOnceOn(hash, input.members, local.since, this.retiredSeen) ??
          (former !== undefined ? { kind: "former-target", because: former } : undefined);
        if (evidence !== undefined) {
          verdicts.set(hash, verdictOf({ kind: "wanted-once", evidence }));
          actions.push({ kind: "wanted", hash, reason: describeWantedOnce(evidence) });
          continue;
        }
        verdicts.set(hash, verdictOf({ kind: "never-wanted" }));
        continue;
      }
      if (local.keepForever) {
        this.quietSince.delete(hash);
        verdicts.set(hash, verdictOf({ kind: "kept-by-policy" }));
        if (local.state === "ready")
          actions.push({ kind: "scale-to-zero", hash, reason: "unwanted; policy keep" });
        continue;
      }
      if (local.state !== "draining") {
        actions.push({ kind: "drain", hash, reason: "no alias, pin or wanted hash reaches it" });
        this.quietSince.delete(hash); // the quiet period starts with the drain
      }
      const blocker: Blocker | undefined = !majority
        ? { kind: "no-majority", visible: visible.length, known: this.known.size }
        : (blockerOf(hash, holding) ??
          (unresolved[0] !== undefined ? { kind: "unresolved", activation: unresolved[0] } : undefined));
      if (blocker) {
        this.quietSince.delete(hash);
        verdicts.set(hash, verdictOf({ kind: "blocked", blocker }));
        continue;
      }
      const since = this.quietSince.get(hash) ?? input.now;
      this.quietSince.set(hash, since);
      if (input.now - since >= this.config.quietMs) {
        this.quietSince.delete(hash);
        verdicts.set(hash, verdictOf({ kind: "retiring" }));
        actions.push({ kind: "retire", hash, reason: `quiet on every member for ${input.now - since} ms` });
      } else {
        verdicts.set(
          hash,
          verdictOf({ kind: "quiet", quietForMs: input.now - since, quietMs: this.config.quietMs }),
        );
      }
    }
    return { actions, verdicts };
  }
}

/**
 * hash -> why it is wanted: the roots and, transitively, what they reference. References come
 * from every member's reports and from this host's own retired rows (a retired hash is reported
 * by nobody, but what it references is a fact about it).
 */
export function wantedIn(
  roots: readonly Root[],
  members: readonly MemberView[],
  retired: readonly RetiredHash[] = [],
): Map<string, string> {
  return wantedHashes(roots, refsIn(members, retired));
}

/** hash -> the service hashes it references, as members report them and retired rows keep them. */
function refsIn(
  members: readonly MemberView[],
  retired: readonly RetiredHash[],
): (hash: string) => readonly string[] {
  const refs = new Map<string, readonly string[]>();
  for (const m of members)
    for (const r of m.hashes) if (r.refs.length && !refs.has(r.hash)) refs.set(r.hash, r.refs);
  for (const r of retired) if (r.refs.length && !refs.has(r.hash)) refs.set(r.hash, r.refs);
  return (h) => refs.get(h) ?? [];
}

/**
 * (hash, since) -> why a copy deployed at `since` was wanted once: an earlier target of an alias or
 * pin written after `since`, or a hash such a target references.
 */
function formerTargets(
  formerRoots: readonly FormerRoot[],
  members: readonly MemberView[],
  retired: readonly RetiredHash[],
): (hash: string, since: number | undefined) => string | undefined {
  const refs = refsIn(members, retired);
  const reached = formerRoots.map((root) => ({ until: root.until, wanted: wantedHashes([root], refs) }));
  return (hash, since) => {
    if (since === undefined) return undefined;
    for (const { until, wanted } of reached) {
      const why = wanted.get(hash);
      if (why !== undefined && since < until) return why;
    }
    return undefined;
  };
}

/**
 * A member that reports `hash` draining, or retired (only a hash once wanted there drains, and a
 * member reports the hashes its retirer retired for a while), or undefined.
 */
function wantedOnceOn(
  hash: string,
  members: readonly MemberView[],
  since: number | undefined,
  retiredSeen: ReadonlyMap<string, number>,
): WantedOnce | undefined {
  const seen = retiredSeen.get(hash);
  const deployedBefore = since !== undefined && seen !== undefined && since < seen;
  for (const m of members)
    for (const r of m.hashes)
      if (r.hash === hash && (r.state === "draining" || (r.state === "retired" && deployedBefore)))
        return { kind: "reported", member: m.name, state: r.state };
  return undefined;
}

/** The first reason found not to stop `hash` now, or undefined. */
function blockerOf(hash: string, holding: readonly MemberView[]): Blocker | undefined {
  for (const m of holding) {
    const member = { member: m.name, status: m.status };
    if (m.reported === false && m.status !== "dead") return { kind: "unreported", ...member };
    for (const r of m.hashes) {
      if (r.hash === hash && (r.inFlight > 0 || r.holds > 0)) {
        return { kind: "busy", ...member, inFlight: r.inFlight, holds: r.holds };
      }
      if (r.hash !== hash && RUNNING.has(r.state) && r.refs.includes(hash)) {
        return { kind: "dependent", ...member, dependent: r.hash, state: r.state };
      }
    }
  }
  return undefined;
}
