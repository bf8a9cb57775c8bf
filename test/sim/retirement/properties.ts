/**
 * The safety and liveness properties of top-down retirement, checked on the simulated cluster.
 *
 * Safety is checked at the moment member M retires hash H: just before the effect is carried
 * out, against the exact input `plan` decided on in that tick (M's view) and against the whole simulated
 * cluster (the truth). Violations:
 *
 * - view.wanted: H is reached from an alias or pin in M's view (its roots, through the refs any
 *   report in its view carries).
 * - view.alias: H is reached, through those refs, from what M's own alias table holds at that
 *   moment, read apart from the roots the alias service makes of it: every target of each
 *   winning record (all of a weighted alias's hashes, whatever their weight), the baseline
 *   (`from`) of a rollout still running or paused, and every pin.
 * - view.sticky: a member in M's view (any status, M itself included) reports sticky clients of H
 *   that may still come back (stickyUntil after now).
 * - view.dependent: a member M sees alive or suspect reports a running (fetching: an activation
 *   under way with its refs read; activating, ready, idle, draining) hash that references H.
 * - view.busy: a member M sees alive or suspect reports requests in flight or holds on H.
 * - view.majority: M does not see (alive or suspect) a strict majority of the cluster: of every
 *   member that joined and has not left (a graceful stop leaves; a crash does not), not only of
 *   those its gossip table still lists.
 * - local: M itself has a request in flight, a live hold, or a live dependent of H, or one being
 *   activated (M's own facts are exact: nothing excuses these). local.hold-forgotten: a job at work
 *   on H here whose lease M does not hold.
 * - transition: H is not draining (the units would be stopped under a state that says otherwise).
 * - truth: a fact true somewhere in the cluster that would have kept H (the winning alias or pin
 *   write of any member, with every target of a split and the baseline of an active rollout, a
 *   running dependent on any member, its services running on under systemd while its agent is
 *   down included, in-flight requests or holds on any up member, sticky clients that an up
 *   member's ingress saw and that may still come back)
 *   that M should have known. M could not know it, and it is counted by cause as the price of
 *   eventual consistency, when
 *   - M's gossip holds the fact's member dead (or not at all): its reports expire by design,
 *     after a crash of either or a partition between them within `healMs`;
 *   - M's gossip holds it alive or suspect (or it is an alias write, which anyone relays): since
 *     the fact arose, the two were never both up and on the same side for `freshMs` in a row
 *     (`slowMs` while a crash or partition elsewhere slows gossip down);
 *   - it is refs of a hash that runs nowhere (nobody reports them).
 *
 * Liveness (once the cluster is healed, every agent restarted and the traffic stopped): every
 * member sees every other (alive or suspect), the alias tables agree, and on every member every
 * hash that is wanted is not draining (nor retired: a rollback that raced its retirement heals),
 * and every hash ever wanted there and now unwanted is retired (idle under policy keep), unless
 * something running keeps it top-down: a hash wanted on some member, or one never wanted on its
 * member since it was activated by hand (kept by design: a fresh deployment waiting for its alias).
 */

import type { MemberStatus } from "../../../src/agent/gossip/types.ts";
import type { Effect } from "../../../src/agent/retirement/effects.ts";
import type { PlanInput } from "../../../src/agent/retirement/plan.ts";
import type { Action } from "../../../src/agent/retirement/planner.ts";
import { wantedHashes } from "../../../src/agent/retirement/wanted.ts";
import { type AliasRecord, targetsOf } from "../../../src/model/alias-record.ts";
import { compareWrites } from "../../../src/model/hlc.ts";
import { isActiveRollout } from "../../../src/model/rollout-state.ts";
import { type AgentModel, LIVE, RUNNING } from "./agent-model.ts";
import type { Workload } from "./workload.ts";
import { short } from "./workload.ts";
import type { World } from "./world.ts";

/**
 * A job's hold lost by an agent restart: the retiring member has a job at work on the hash whose
 * lease it does not hold. Holds are journalled in the agent's database and restored at start,
 * each as if renewed then (holds/holds.ts), so a restart never loses one; kept apart so that
 * the test can say which property broke.
 */
export const HOLD_LOST = "local.hold-forgotten";

export interface Violation {
  property: string;
  at: number;
  member: string;
  hash: string;
  detail: string;
}

export interface Excused {
  category: string;
  at: number;
  member: string;
  hash: string;
  /** how old the fact M did not know was */
  ageMs: number;
}

export interface CheckerOptions {
  /** how long gossip may take to carry a fact between two members that stay connected */
  freshMs: number;
  /** how long after a crash or partition two members may take to know each other again */
  healMs: number;
  /** how long gossip may take to carry a fact while a crash or partition elsewhere slows it */
  slowMs: number;
}

type Cut = "fresh" | "crash" | "partition" | "slowed by a crash or partition elsewhere";

interface Fact {
  what: string;
  /** member index where the fact lives (or the alias write's origin) */
  member: number;
  since: number;
}

export class Checker {
  readonly violations: Violation[] = [];
  readonly excused: Excused[] = [];
  retirements = 0;
  /** per retirement: ms from the drain on that member to its retirement there */
  readonly timeToRetireMs: number[] = [];
  /** when each (member, hash) last drained */
  private readonly drainedAt = new Map<string, number>();
  /** what each member's alias table wants now (its roots through the catalog's refs) */
  private readonly wantedBy = new Map<string, ReadonlySet<string>>();
  /** when each hash last left the wanted set of some member's alias table */
  private readonly wantedUntil = new Map<string, number>();
  /** hashes some member's retirer marked wanted (an alias, pin or wanted dependent reached its copy) */
  private readonly marked = new Set<string>();

  constructor(
    private readonly w: World,
    private readonly workload: Workload,
    private readonly options: CheckerOptions,
  ) {}

  onEffect(agent: AgentModel, action: Action, effect: Effect, input: PlanInput): void {
    if (effect.kind === "mark-wanted") this.marked.add(action.hash);
    if (effect.kind !== "transition") return;
    const key = `${agent.name} ${action.hash}`;
    if (effect.to === "draining") this.drainedAt.set(key, this.w.now);
    if (effect.to !== "retired") return;
    this.retirements++;
    const drained = this.drainedAt.get(key);
    if (drained !== undefined) this.timeToRetireMs.push(this.w.now - drained);
    this.drainedAt.delete(key);
    const hash = action.hash;
    const fail = (property: string, detail: string) =>
      this.violations.push({ property, at: this.w.now, member: agent.name, hash, detail });
    const d = agent.deployments.get(hash);
    this.w.trace(`RETIRE ${short(hash)} on ${agent.name} (${action.reason})`);

    if (d?.state !== effect.from) fail("transition", `state is ${d?.state}, not ${effect.from}`);
    this.checkView(input, hash, fail);
    this.checkOwnTable(agent, input, hash, fail);
    this.checkLocal(agent, hash, fail);
    this.checkTruth(agent, input, hash, fail);
  }

  /** An alias write won on `agent`: what its table no longer wants was wanted until now. */
  onAliasChange(agent: AgentModel): void {
    const before = this.wantedBy.get(agent.name);
    const now = new Set(
      wantedHashes(agent.aliases.roots(this.w.options.policy), this.w.catalog.refsOf).keys(),
    );
    for (const h of before ?? []) if (!now.has(h)) this.wantedUntil.set(h, this.w.now);
    this.wantedBy.set(agent.name, now);
  }

  // ---- M's own view ------------------------------------------------------------------------------

  private checkView(input: PlanInput, hash: string, fail: (p: string, d: string) => void): void {
    const refs = new Map<string, string[]>();
    for (const m of input.members) for (const r of m.hashes) if (r.refs.length > 0) refs.set(r.hash, r.refs);
    const wanted = bfs(
      input.roots.map((r) => r.hash),
      (h) => refs.get(h) ?? [],
    );
    if (wanted.has(hash)) {
      const roots = input.roots.filter((r) => bfs([r.hash], (h) => refs.get(h) ?? []).has(hash));
      fail("view.wanted", `reached from ${roots.map((r) => `${r.reason} (${short(r.hash)})`).join(", ")}`);
    }
    for (const m of input.members)
      for (const r of m.hashes)
        if (r.hash === hash && r.stickyUntil !== undefined && r.stickyUntil > input.now)
          fail(
            "view.sticky",
            `sticky clients until ${r.stickyUntil - input.now} ms from now on ${m.name} (${m.status})`,
          );
    const visible = input.members.filter((m) => m.status === "alive" || m.status === "suspect");
    for (const m of visible) {
      for (const r of m.hashes) {
        if (r.hash !== hash && RUNNING.has(r.state) && r.refs.includes(hash))
          fail("view.dependent", `${short(r.hash)} is ${r.state} on ${m.name} (${m.status})`);
        if (r.hash === hash && (r.inFlight > 0 || r.holds > 0))
          fail("view.busy", `${r.inFlight} in flight, ${r.holds} hold(s) on ${m.name} (${m.status})`);
      }
    }
    const cluster = this.w.agents.filter((a) => !a.left).length;
    if (visible.length * 2 <= cluster)
      fail(
        "view.majority",
        `sees ${visible.length} of the cluster's ${cluster} members that have not left (its table lists ${input.members.length})`,
      );
  }

  /** view.alias: M's alias table as it is now, every target and active baseline a root. */
  private checkOwnTable(
    agent: AgentModel,
    input: PlanInput,
    hash: string,
    fail: (p: string, d: string) => void,
  ): void {
    const refs = new Map<string, string[]>();
    for (const m of input.members) for (const r of m.hashes) if (r.refs.length > 0) refs.set(r.hash, r.refs);
    for (const r of agent.node.aliases())
      if (bfs(keptBy(r), (h) => refs.get(h) ?? []).has(hash))
        fail("view.alias", `reached from ${describeRecord(r)} in ${agent.name}'s own alias table`);
  }

  private checkLocal(agent: AgentModel, hash: string, fail: (p: string, d: string) => void): void {
    if (agent.inFlightOf(hash) > 0) fail("local", `${agent.inFlightOf(hash)} request(s) in flight here`);
    if (agent.holdsOf(hash) > 0) fail("local", `${agent.holdsOf(hash)} live hold(s) here`);
    for (const d of agent.deployments.values())
      if (d.hash !== hash && LIVE.has(d.state) && d.refs.includes(hash))
        fail("local", `dependent ${short(d.hash)} is ${d.state} here`);
    for (const p of agent.fetching())
      if (p.refs.includes(hash)) fail("local", `dependent ${short(p.hash)} is being activated here`);
    const jobs = this.workload.killJobsOf(agent.index, hash);
    if (jobs.length > 0 && agent.holdsOf(hash) === 0)
      fail(
        HOLD_LOST,
        `${jobs.length} job(s) still at work on it here, their lease lost (an agent restart?) and not yet renewed`,
      );
  }

  // ---- the whole cluster's truth -------------------------------------------------------------------

  private checkTruth(
    agent: AgentModel,
    input: PlanInput,
    hash: string,
    fail: (p: string, d: string) => void,
  ): void {
    const m = agent.index;
    const judge = (kind: string, facts: Fact[]) => {
      // The retirement is excused only if every fact that would have kept the hash is excused.
      for (const f of facts) {
        if (f.member === m && kind !== "alias write") {
          fail("truth", `${kind}: ${f.what} on ${agent.name} itself`);
          continue;
        }
        const name = this.w.agents[f.member]?.name ?? "";
        // what M's gossip holds (not the planner's input, which a bug could have dropped it from)
        const status = kind === "alias write" ? null : (agent.node.memberStatus(name) ?? "unknown");
        const cut = this.cut(m, f.member, f.since, status);
        if (cut === null)
          fail(
            "truth",
            `${kind} not seen by ${agent.name}: ${f.what} on ${name} (${status ?? "origin"} in its view), ${this.w.now - f.since} ms old, though they were connected long enough since`,
          );
        else
          this.excused.push({
            category: `${kind} (${cut})`,
            at: this.w.now,
            member: agent.name,
            hash,
            ageMs: this.w.now - f.since,
          });
      }
    };

    // Running dependents and work anywhere (a crashed agent's services keep running under systemd).
    const dependents: Fact[] = [];
    const busy: Fact[] = [];
    for (const x of this.w.agents) {
      if (x.index === m) continue;
      for (const d of x.deployments.values())
        if (d.hash !== hash && RUNNING.has(d.state) && d.refs.includes(hash))
          dependents.push({ what: `${short(d.hash)} ${d.state}`, member: x.index, since: d.liveSince });
      if (x.up)
        for (const p of x.fetching())
          if (p.refs.includes(hash))
            dependents.push({ what: `${short(p.hash)} being activated`, member: x.index, since: p.since });
      if (x.up && (x.inFlightOf(hash) > 0 || x.holdsOf(hash) > 0))
        busy.push({
          what: `${x.inFlightOf(hash)} in flight, ${x.holdsOf(hash)} hold(s)`,
          member: x.index,
          since: x.busySince(hash),
        });
    }
    judge("running dependent", dependents);
    judge("work in flight or held", busy);

    // Sticky clients that may come back, as every up member's ingress saw them (M's own included).
    const sticky: Fact[] = [];
    for (const x of this.w.agents) {
      const since = x.up ? x.stickySince(hash) : undefined;
      if (since !== undefined)
        sticky.push({
          what: `sticky clients for ${(x.stickyUntil(hash) ?? 0) - this.w.now} ms more`,
          member: x.index,
          since,
        });
    }
    judge("sticky clients", sticky);

    // Aliases and pins: the winning write of every name across all members.
    const winners = globalAliases(this.w.agents);
    const refsOf = this.w.catalog.refsOf;
    const responsible = [...winners.values()].filter((r) => bfs(keptBy(r), refsOf).has(hash));
    if (responsible.length === 0) return;
    const mine = new Map(agent.node.aliases().map((r) => [r.name, r]));
    const known = new Map<string, string[]>();
    for (const v of input.members) for (const r of v.hashes) known.set(r.hash, r.refs);
    for (const root of responsible) {
      const seen = mine.get(root.name);
      if (seen === undefined || compareWrites(seen, root) !== 0) {
        const origin = this.w.agentNamed(root.origin)?.index ?? m;
        judge("alias write", [{ what: describeRecord(root), member: origin, since: root.hlc.wall }]);
        continue;
      }
      // M has the write: some hash between the root and H has refs M could not learn.
      const onPath = [...bfs(keptBy(root), refsOf)].filter((h) => h !== hash && bfs([h], refsOf).has(hash));
      const gaps = onPath.filter((h) => refsOf(h).length > 0 && !(known.get(h)?.length ?? 0));
      if (gaps.length === 0) {
        fail("truth", `${describeRecord(root)} reaches it and ${agent.name} knows every ref on the way`);
        continue;
      }
      for (const gap of gaps) {
        const holders = this.w.agents.filter((x) => x.isLive(gap));
        if (holders.length === 0) {
          this.excused.push({
            category: "refs of a wanted hash that runs nowhere",
            at: this.w.now,
            member: agent.name,
            hash,
            ageMs: 0,
          });
          continue;
        }
        judge(
          "refs of a wanted hash",
          holders.map((x) => ({
            what: `${short(gap)} (refs ${short(hash)})`,
            member: x.index,
            since: x.deployments.get(gap)?.liveSince ?? 0,
          })),
        );
      }
    }
  }

  /**
   * Why M could not know a fact of member X that holds since `since`, or null if it should have.
   * Facts in reports: if M holds X as dead (or has forgotten it), its reports expire by design,
   * which only a crash or a partition between them excuses (else it is a false death). If M
   * holds X alive or suspect, it holds X's last report, which carries the fact unless the two
   * were never connected long enough since it arose for gossip to carry it. Alias writes are
   * learned from anyone and kept across restarts: only the second rule applies.
   */
  private cut(m: number, x: number, since: number, status: MemberStatus | "unknown" | null): Cut | null {
    const now = this.w.now;
    const d = this.w.disruptions;
    const { freshMs, slowMs, healMs } = this.options;
    const crash = d.crashedWithin(m, now, healMs) || d.crashedWithin(x, now, healMs);
    const partition = d.partitionedWithin(m, x, now, healMs);
    if (status === "dead" || status === "left" || status === "unknown") {
      if (crash) return "crash";
      if (partition) return "partition";
      return now - since < freshMs ? "fresh" : null;
    }
    const needed = d.anyWithin(now, healMs) ? slowMs : freshMs;
    if (d.longestConnected(m, x, since, now) >= needed) return null;
    if (crash) return "crash";
    if (partition) return "partition";
    return needed === freshMs ? "fresh" : "slowed by a crash or partition elsewhere";
  }

  // ---- liveness ------------------------------------------------------------------------------------

  /**
   * What still keeps the cluster from its final state (empty once it is there). What runs on a
   * member and is wanted there, or never wanted there (kept by design: a fresh deployment waiting
   * for its alias), keeps everything it references from retiring on every member, top-down. (With
   * the same alias table everywhere, members want the same hashes, under keep-last too: the
   * previous targets travel in the alias records.)
   */
  pending(): string[] {
    const out: string[] = [];
    for (const a of this.w.agents)
      for (const b of this.w.agents) {
        const status = a.node.memberStatus(b.name);
        if (status !== "alive" && status !== "suspect")
          out.push(`${a.name} holds ${b.name} ${status ?? "unknown"}`);
      }
    const tables = this.w.agents.map((a) => canonical(a.node.aliases().sort(byName)));
    if (tables.some((t) => t !== tables[0])) out.push("alias tables differ");
    const policy = this.w.options.policy;
    // refs are learned from reports: those of a hash that runs nowhere are nobody's to know
    const live = new Set(this.w.agents.flatMap((a) => [...a.deployments.keys()].filter((h) => a.isLive(h))));
    const refsOf = (h: string) => (live.has(h) ? this.w.catalog.refsOf(h) : []);
    const keepers = this.neverWanted();
    for (const a of this.w.agents)
      for (const h of wantedHashes(a.aliases.roots(policy), refsOf).keys()) if (a.isLive(h)) keepers.push(h);
    const keptTopDown = bfs(
      keepers.flatMap((h) => refsOf(h)),
      refsOf,
    );
    for (const a of this.w.agents) {
      const wanted = wantedHashes(a.aliases.roots(policy), refsOf);
      for (const d of a.deployments.values()) {
        if (d.state === "retired" && wanted.has(d.hash))
          out.push(`${short(d.hash)} on ${a.name} is wanted again but still retired there`);
        if (!LIVE.has(d.state)) continue;
        const verdict = a.lastResult?.verdicts.get(d.hash)?.reason ?? "no verdict";
        const what = `${short(d.hash)} on ${a.name} (${verdict})`;
        if (wanted.has(d.hash)) {
          if (d.state === "draining") out.push(`${what} is wanted but draining`);
          if (d.reactivated) out.push(`${what} is wanted but still marked reactivated`);
          if (!d.everWanted) out.push(`${what} is wanted but not marked ever wanted`);
        } else if (d.everWanted) {
          if (policy.kind === "keep") {
            if (d.state !== "idle") out.push(`${what} is unwanted (policy keep) but ${d.state}`);
          } else if (!keptTopDown.has(d.hash)) out.push(`${what} is unwanted but ${d.state}`);
        }
      }
    }
    return out;
  }

  /** Hashes live and never wanted on some member (kept there until deactivated). */
  private neverWanted(): string[] {
    return this.w.agents.flatMap((a) =>
      [...a.deployments.values()].filter((d) => LIVE.has(d.state) && !d.everWanted).map((d) => d.hash),
    );
  }

  /**
   * Copies kept forever: at the end of a run, live copies of a hash that no member's alias table
   * wants any more and that nothing running anywhere depends on (else it is that dependent which
   * is kept), that should have retired: marked wanted on their member, or never marked there
   * though their hash was wanted somewhere while they ran (they missed the alias). Kept by design,
   * so not counted: a copy activated again by hand after it was wanted (reactivated), one whose
   * activation by hand was asked for after its hash was last wanted anywhere (a fresh deployment:
   * kept until an alias wants it, or deactivated; asking again for a live copy counts too), one
   * of a hash never wanted anywhere, and every unwanted copy under policy keep (scaled to zero).
   *
   * `asserted`: such copies, with why. `unseenAlias`: those of hashes that no member ever marked
   * wanted: the only alias writes naming them were made on members that do not run them and lost
   * (last writer wins) before any member that runs them saw them; no record names the hash any
   * more, so every copy looks like a deployment never aliased. A known gap: reported, not asserted.
   */
  keptForever(): { asserted: string[]; unseenAlias: string[] } {
    const out = { asserted: [] as string[], unseenAlias: [] as string[] };
    const policy = this.w.options.policy;
    if (policy.kind === "keep") return out;
    const wanted = new Set<string>();
    for (const set of this.wantedBy.values()) for (const h of set) wanted.add(h);
    const dependedOn = new Set<string>();
    for (const a of this.w.agents)
      for (const d of a.deployments.values())
        if (RUNNING.has(d.state)) for (const r of d.refs) dependedOn.add(r);
    for (const a of this.w.agents)
      for (const d of a.deployments.values()) {
        if (!LIVE.has(d.state) || wanted.has(d.hash) || d.reactivated || dependedOn.has(d.hash)) continue;
        const verdict = a.lastResult?.verdicts.get(d.hash)?.reason ?? "no verdict";
        const copy = `${short(d.hash)} ${d.state} on ${a.name} (${verdict})`;
        if (d.everWanted) {
          out.asserted.push(`${copy}: wanted here once, never retired`);
          continue;
        }
        const until = this.wantedUntil.get(d.hash);
        if (until === undefined || Math.max(d.liveSince, a.askedByHand.get(d.hash) ?? 0) >= until) continue;
        if (this.marked.has(d.hash)) out.asserted.push(`${copy}: missed the alias that other members saw`);
        else out.unseenAlias.push(copy);
      }
    return out;
  }

  /** Hashes some members keep under policy keep-last and others do not (asserted: none). */
  keepLastDisagreements(): string[] {
    const policy = this.w.options.policy;
    if (policy.kind !== "keep-last") return [];
    const sets = this.w.agents.map((a) => wantedHashes(a.aliases.roots(policy), this.w.catalog.refsOf));
    const all = new Set(sets.flatMap((s) => [...s.keys()]));
    return [...all].filter((h) => sets.some((s) => !s.has(h))).map(short);
  }

  /** Wanted hashes that run on no member (a rollback that raced a retirement, a pin of a retired hash). */
  wantedNowhere(): string[] {
    const winners = globalAliases(this.w.agents);
    const roots = [...winners.values()].flatMap((r) => keptBy(r).map((hash) => ({ hash, reason: r.name })));
    const wanted = wantedHashes(roots, this.w.catalog.refsOf);
    return [...wanted.keys()].filter((h) => !this.w.agents.some((a) => a.isLive(h)));
  }
}

/**
 * What an alias or pin record keeps, read from the record itself (not through AliasService.roots,
 * whose rule the oracle checks): every target (a weighted alias's hashes, whatever their weight)
 * and the baseline of a rollout still running or paused.
 */
export function keptBy(r: AliasRecord): string[] {
  const out = targetsOf(r);
  if (isActiveRollout(r.rollout) && !out.includes(r.rollout.from)) out.push(r.rollout.from);
  return out;
}

const describeRecord = (r: AliasRecord): string => {
  const to = r.split?.map((t) => `${short(t.hash)}:${t.weight}`).join(",") ?? short(r.hash);
  const rollout = isActiveRollout(r.rollout)
    ? ` (rollout ${r.rollout.status} from ${short(r.rollout.from)})`
    : "";
  return `${r.name}=${to}${rollout}`;
};

/** The winning record of every alias name across every member's table (crashed ones included). */
export function globalAliases(agents: readonly AgentModel[]): Map<string, AliasRecord> {
  const out = new Map<string, AliasRecord>();
  for (const a of agents) {
    for (const r of a.node.aliases()) {
      const held = out.get(r.name);
      if (held === undefined || compareWrites(r, held) > 0) out.set(r.name, r);
    }
  }
  return out;
}

const bfs = (start: readonly string[], next: (h: string) => readonly string[]): Set<string> => {
  const seen = new Set(start);
  const queue = [...start];
  for (let i = 0; i < queue.length; i++)
    for (const n of next(queue[i] as string))
      if (!seen.has(n)) {
        seen.add(n);
        queue.push(n);
      }
  return seen;
};

/** JSON with object keys sorted: records decoded from a peer list their fields in another order. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
