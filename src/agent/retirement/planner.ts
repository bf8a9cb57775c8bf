import type { DeploymentState, HashReport, MemberStatus } from "../gossip/types.ts";
import { type Root, wantedHashes } from "./wanted.ts";

/** States in which a hash's socket exists, so it can still be called (and call others). */
const RUNNING: ReadonlySet<DeploymentState> = new Set(["activating", "ready", "idle", "draining"]);

export interface MemberView {
  name: string;
  status: MemberStatus;
  hashes: readonly HashReport[];
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
}

export interface PlannerInput {
  now: number;
  /** every member this agent knows, itself included (its own report is the freshest) */
  members: readonly MemberView[];
  roots: readonly Root[];
  /** this host's live hashes */
  local: readonly LocalHash[];
}

export interface PlannerConfig {
  /** how long an unwanted hash must be idle and unreferenced on every member before it stops */
  quietMs: number;
}

export type Action =
  | { kind: "wanted"; hash: string; reason: string }
  | { kind: "drain"; hash: string; reason: string }
  | { kind: "undrain"; hash: string; reason: string }
  | { kind: "scale-to-zero"; hash: string; reason: string }
  | { kind: "retire"; hash: string; reason: string };

export interface Verdict {
  wanted: boolean;
  /** why the hash is running, draining, or not yet retired: the answer to "why is this still up?" */
  reason: string;
}

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
 * - no alive or suspect member reports in-flight requests or holds on it;
 * - this agent sees a strict majority of the members that have not left. In a partition the
 *   minority side never retires anything; the majority side does so only after the others are
 *   declared dead (their reports expire then, and only then).
 */
export class RetirementPlanner {
  private readonly quietSince = new Map<string, number>();

  constructor(private readonly config: PlannerConfig) {}

  step(input: PlannerInput): PlannerResult {
    const visible = input.members.filter((m) => m.status === "alive" || m.status === "suspect");
    const known = input.members.filter((m) => m.status !== "left");
    const refs = refsIndex(input.members);
    const wanted = wantedHashes(input.roots, (h) => refs.get(h) ?? []);
    const majority = visible.length * 2 > known.length;
    const actions: Action[] = [];
    const verdicts = new Map<string, Verdict>();
    const localHashes = new Set(input.local.map((l) => l.hash));
    for (const hash of this.quietSince.keys()) if (!localHashes.has(hash)) this.quietSince.delete(hash);

    for (const local of input.local) {
      const { hash } = local;
      if (!RUNNING.has(local.state)) continue;
      const why = wanted.get(hash);
      if (why !== undefined) {
        this.quietSince.delete(hash);
        verdicts.set(hash, { wanted: true, reason: `wanted: ${why}` });
        if (!local.everWanted) actions.push({ kind: "wanted", hash, reason: why });
        if (local.state === "draining")
          actions.push({ kind: "undrain", hash, reason: `wanted again: ${why}` });
        continue;
      }
      if (!local.everWanted) {
        verdicts.set(hash, { wanted: false, reason: "never aliased or pinned: kept until deactivated" });
        continue;
      }
      if (local.keepForever) {
        this.quietSince.delete(hash);
        verdicts.set(hash, { wanted: false, reason: "unwanted, kept scaled to zero by retention policy" });
        if (local.state === "ready")
          actions.push({ kind: "scale-to-zero", hash, reason: "unwanted; policy keep" });
        continue;
      }
      if (local.state !== "draining")
        actions.push({ kind: "drain", hash, reason: "no alias, pin or wanted hash reaches it" });
      const blocker = majority
        ? blockerOf(hash, visible)
        : `sees ${visible.length} of ${known.length} members, not a majority (partition?)`;
      if (blocker) {
        this.quietSince.delete(hash);
        verdicts.set(hash, { wanted: false, reason: `draining, kept: ${blocker}` });
        continue;
      }
      const since = this.quietSince.get(hash) ?? input.now;
      this.quietSince.set(hash, since);
      if (input.now - since >= this.config.quietMs) {
        this.quietSince.delete(hash);
        verdicts.set(hash, { wanted: false, reason: "retired: unwanted, unreferenced and idle everywhere" });
        actions.push({ kind: "retire", hash, reason: `quiet on every member for ${input.now - since} ms` });
      } else {
        verdicts.set(hash, {
          wanted: false,
          reason: `draining, quiet for ${input.now - since} ms of ${this.config.quietMs}`,
        });
      }
    }
    return { actions, verdicts };
  }
}

function refsIndex(members: readonly MemberView[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of members)
    for (const r of m.hashes) if (r.refs.length && !out.has(r.hash)) out.set(r.hash, r.refs);
  return out;
}

/** The first reason found not to stop `hash` now, or undefined. */
function blockerOf(hash: string, visible: readonly MemberView[]): string | undefined {
  for (const m of visible) {
    for (const r of m.hashes) {
      if (r.hash === hash && (r.inFlight > 0 || r.holds > 0)) {
        return `${r.inFlight} in flight and ${r.holds} hold(s) on ${m.name}${m.status === "suspect" ? " (suspect)" : ""}`;
      }
      if (r.hash !== hash && RUNNING.has(r.state) && r.refs.includes(hash)) {
        return `dependent ${r.hash} is ${r.state} on ${m.name}${m.status === "suspect" ? " (suspect)" : ""}`;
      }
    }
  }
  return undefined;
}
