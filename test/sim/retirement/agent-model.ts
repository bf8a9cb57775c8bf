/**
 * One simulated hashd agent: what it keeps in SQLite (deployments with state, refs, everWanted;
 * the alias history; hold leases, through the real `Holds` on the real `StateStore`), what it
 * keeps in memory (in-flight counts, the planner, its gossip view) and the loops of the agent (src/agent/compose/) that
 * matter to retirement: publish the local report, run the retirer (the agent's own `plan`, then
 * its decisions carried out through `effectOf` and `beforeStop`), watch units
 * and scale idle services to zero, join the seeds (cluster.ts; retrying them and reconnecting are
 * the gossip core's, so the model runs the real code). Crash and restart behave as the real agent:
 * deployments, alias history and hold leases survive (the services keep running under systemd),
 * in-flight requests, the planner's memory and the gossip view do not; at restart reconcile adopts
 * what runs (a draining hash comes back as ready or idle), re-checks the readiness of what was
 * activating, and the holds still live are restored.
 */

import { AliasService, type RetentionPolicy } from "../../../src/agent/aliases/alias-service.ts";
import { recentlyRetired } from "../../../src/agent/cluster/local-report.ts";
import type { GossipNode } from "../../../src/agent/gossip/core.ts";
import { Holds } from "../../../src/agent/holds/holds.ts";
import { type Effect, effectOf } from "../../../src/agent/retirement/effects.ts";
import {
  beforeStop,
  type Plan,
  type PlanInput,
  type Planner,
  type PlanRow,
  plan,
  RetirerMemory,
} from "../../../src/agent/retirement/plan.ts";
import {
  type Action,
  type MemberView,
  RUNNING as PLANNER_RUNNING,
  type PlannerResult,
} from "../../../src/agent/retirement/planner.ts";
import { StateStore } from "../../../src/agent/state/store.ts";
import { HashdError } from "../../../src/lib/errors.ts";
import { type DeploymentState, LIVE_STATES } from "../../../src/model/deployment.ts";
import type { HashReport, MemberAppState } from "../../../src/model/reports.ts";
import type { SimMember, Simulation } from "../gossip/simulator.ts";

/** States in which a hash's units exist: it can be called, and call others. */
export const LIVE: ReadonlySet<DeploymentState> = LIVE_STATES;
/** The planner's notion of a running dependent: live, or "fetching" (an activation under way). */
export const RUNNING: ReadonlySet<DeploymentState> = PLANNER_RUNNING;

/** How long the agent's own activation of a hash wanted again takes (in the store: no copy). */
const REVIVE_PIPELINE_MS = 300;
const REVIVE_READY_MS = 1000;

export interface ModelDeployment {
  hash: string;
  state: DeploymentState;
  refs: string[];
  everWanted: boolean;
  /** activated again by hand after it was wanted (store.ts): kept until wanted again */
  reactivated: boolean;
  generation: number;
  /** whether systemd runs its service (an idle hash has only its socket) */
  serviceUp: boolean;
  /** when it last became live here (activation): the age of "it runs here" as a fact */
  liveSince: number;
}

export interface AgentConfig {
  policy: RetentionPolicy;
  /** the agent's RetirementPlanner (a test may wrap it to plant a bug) */
  newPlanner: () => Planner;
  /** addresses of every other member (the NixOS config's seeds) */
  seeds: () => string[];
  /** idle time after which the idle scaler stops a service */
  idleStopMs: number;
  /** a bug planted in how the agent builds its cluster view (to test the properties) */
  mapView?: (view: MemberView[]) => MemberView[];
  /** a bug planted in the retirer: it skips `beforeStop` (does not read the row and aliases again) */
  noRecheck?: boolean;
}

/** How the cluster driver hears about what an agent does. */
export interface AgentHooks {
  schedule(afterMs: number, fn: () => void): void;
  /** just before an effect is carried out, with the input `plan` decided on in that tick */
  beforeEffect(agent: AgentModel, action: Action, effect: Effect, input: PlanInput): void;
}

export class AgentModel {
  readonly deployments = new Map<string, ModelDeployment>();
  readonly aliases: AliasService;
  /** the agent's SQLite (alias history and holds here; deployments are modelled in the map above) */
  private readonly db: StateStore;
  /** open-state.ts: the holds of the service API, journalled in the database */
  private holds: Holds;
  /** bumped at every crash: work of an earlier process (timers, requests, leases) is void */
  epoch = 0;
  /** retirer.ts: what the retirer remembers between ticks (the planner's memory included) */
  private memory: RetirerMemory;
  private readonly inFlight = new Map<string, number>();
  /**
   * the ingress's sticky use per hash: until when clients pinned to it by a cookie, last seen
   * here, may come back, and each extension of that time since it last lapsed (at, until): the
   * facts for the checker (in memory: lost at a crash)
   */
  private readonly sticky = new Map<string, { until: number; extensions: { at: number; until: number }[] }>();
  /** when each hash last had work here (the idle scaler's clock) */
  private readonly lastActivity = new Map<string, number>();
  /** when each hash last went from no work to some (the age of "it is busy here" as a fact) */
  private readonly busyFrom = new Map<string, number>();
  /** hold ids, unique across this agent's processes (the real agent uses random UUIDs) */
  private nextLease = 1;
  /**
   * hashes whose activation pipeline runs (the retirer leaves them alone), with their refs once
   * read (activator.ts activations())
   */
  private readonly pipelines = new Map<string, { refs: string[] | null; since: number }>();
  private lastPublished: HashReport[] | undefined;
  lastResult: PlannerResult | null = null;
  /** `kept` events the retirer recorded (one per change of verdict) */
  keptEvents = 0;
  /** when each hash last retired here */
  readonly retiredAt = new Map<string, number>();
  /**
   * when `hashd activate` of each hash was last asked for here, even when it changed nothing (the
   * hash was live): the user asked for the hash on this host then (facts for the checker)
   */
  readonly askedByHand = new Map<string, number>();

  constructor(
    private readonly sim: Simulation,
    readonly index: number,
    private readonly config: AgentConfig,
    private readonly hooks: AgentHooks,
  ) {
    this.db = new StateStore(":memory:", () => this.sim.now);
    const backend = {
      setAliases: (entries: readonly { name: string; hash: string | null }[], now: number) =>
        this.node.setAliases(entries, now),
      aliases: () => this.node.aliases(),
    };
    this.aliases = new AliasService(backend, this.db.db, () => this.sim.now);
    this.memory = this.newMemory();
    this.holds = this.newHolds();
  }

  /** open-state.ts: the holds restored from the database. */
  private newHolds(): Holds {
    return new Holds({
      clock: { now: () => this.sim.now },
      journal: this.db,
      newId: () => `${this.index}-${this.nextLease++}`,
    });
  }

  /** retirer.ts constructor: a new memory, the planner starting from the members kept in the database. */
  private newMemory(): RetirerMemory {
    return new RetirerMemory(this.config.newPlanner(), this.db.knownMembers());
  }

  get member(): SimMember {
    return this.sim.members[this.index] as SimMember;
  }

  get node(): GossipNode {
    return this.member.node;
  }

  get name(): string {
    return this.member.name;
  }

  get up(): boolean {
    return !this.member.crashed && !this.stopping;
  }

  /** between a graceful stop's start and its process exit (its gossip node still says goodbye) */
  private stopping = false;
  /** it left the cluster (a graceful stop) and has not started again */
  left = false;

  private get now(): number {
    return this.sim.now;
  }

  // ---- what the agent reports --------------------------------------------------------------

  inFlightOf(hash: string): number {
    return this.inFlight.get(hash) ?? 0;
  }

  holdsOf(hash: string): number {
    return this.holds.activeCount(hash);
  }

  isLive(hash: string): boolean {
    const d = this.deployments.get(hash);
    return d !== undefined && LIVE.has(d.state);
  }

  /** Whether requests can be routed to it here: ready, idle or draining (not activating). */
  serves(hash: string): boolean {
    const state = this.deployments.get(hash)?.state;
    return state === "ready" || state === "idle" || state === "draining";
  }

  /** Whether an activation pipeline of `hash` runs here (activator.ts: concurrent calls share it). */
  activating(hash: string): boolean {
    return this.pipelines.has(hash);
  }

  /**
   * local-report.ts: every deployment but retired ones (except the last RECENTLY_RETIRED_MAX the
   * retirer retired in the last RECENTLY_RETIRED_MS), with the ingress's counters, and the
   * activations under way that have read their refs as "fetching".
   */
  report(): HashReport[] {
    // (called four times a second per agent: written for speed; refs arrays are never changed in place)
    let recent: Set<string> | undefined;
    if (this.retiredAt.size > 0) {
      const retired = [...this.retiredAt].filter(([hash]) => this.deployments.get(hash)?.state === "retired");
      recent = new Set(recentlyRetired(retired, ([, at]) => at, this.now).map(([hash]) => hash));
    }
    const out: HashReport[] = [];
    const position = this.pipelines.size > 0 ? new Map<string, number>() : undefined;
    for (const d of this.deployments.values()) {
      if (d.state === "retired" && !recent?.has(d.hash)) continue;
      position?.set(d.hash, out.length);
      const report: HashReport = {
        hash: d.hash,
        state: d.state,
        inFlight: this.inFlightOf(d.hash),
        holds: this.holdsOf(d.hash),
        refs: d.refs,
      };
      const stickyUntil = this.stickyUntil(d.hash);
      if (stickyUntil !== undefined) report.stickyUntil = stickyUntil;
      out.push(report);
    }
    if (position === undefined) return out;
    for (const [hash, p] of this.pipelines) {
      if (p.refs === null) continue;
      const at = position.get(hash);
      if (at !== undefined && LIVE.has((out[at] as HashReport).state)) continue;
      const fetching: HashReport = { hash, state: "fetching", inFlight: 0, holds: 0, refs: p.refs };
      if (at === undefined) out.push(fetching);
      else out[at] = fetching;
    }
    return out;
  }

  /** Activations under way here whose refs are read, with when they were (facts for the checker). */
  fetching(): { hash: string; refs: string[]; since: number }[] {
    return [...this.pipelines].flatMap(([hash, p]) =>
      p.refs === null || this.isLive(hash) ? [] : [{ hash, refs: p.refs, since: p.since }],
    );
  }

  /** cluster.ts GossipCluster.members: every member gossip knows, this one with its fresh report. */
  view(): MemberView[] {
    const node = this.node;
    const local = this.report();
    const view = node.members().map((m) => ({
      name: m.name,
      status: m.state,
      hashes: m.name === this.name ? local : (node.memberState(m.name)?.hashes ?? []),
      reported: m.name === this.name || m.stateVersion !== null,
    }));
    return this.config.mapView ? this.config.mapView(view) : view;
  }

  /** start-loops.ts publish: offered to gossip whenever it changed. */
  publish(): void {
    if (!this.up) return;
    this.holds.sweep(); // expired leases leave the database too
    const hashes = this.report();
    if (this.lastPublished !== undefined && sameReports(hashes, this.lastPublished)) return;
    this.lastPublished = hashes;
    const state: MemberAppState = { hashes, ingress: `${this.member.address.split(":")[0]}:80` };
    this.node.setLocalState(state, this.now);
  }

  // ---- the retirer ---------------------------------------------------------------------------

  /**
   * retirer.ts tick: the agent's own `plan` decides on this model's facts, and its decisions are
   * carried out here: kept events counted, known members saved, each action through `effectOf`,
   * a retirement after `beforeStop`. Nothing of the decision is written here.
   */
  retirementTick(): PlannerResult | null {
    if (!this.up) return null;
    const input: PlanInput = {
      ...this.aliasView(),
      now: this.now,
      formerRoots: this.aliases.formerRoots(),
      rows: this.rows(),
      activations: [...this.pipelines].map(([hash, p]) => ({ hash, refs: p.refs })),
      // activator.ts isBusy: an activation under way (stops take no time here)
      busy: [...this.pipelines.keys()],
    };
    const decided: Plan = plan(this.memory, input);
    this.lastResult = decided.planned;
    if (decided.knownMembers) {
      this.db.setKnownMembers(decided.knownMembers);
      this.memory.membersSaved(decided.knownMembers);
    }
    this.keptEvents += decided.events.length;
    for (const action of decided.actions) {
      const d = this.deployments.get(action.hash);
      const effect = effectOf(d, action, d?.serviceUp ?? false);
      if (!d || !effect) continue;
      if (effect.kind === "transition" && effect.stop === "units-and-gc-root" && !this.config.noRecheck) {
        const go = beforeStop(d.hash, d.generation, {
          ...this.aliasView(),
          now: this.now,
          row: d,
          rows: this.rows(),
        });
        if (!go.stop) {
          if (go.event) this.keptEvents++;
          continue;
        }
      }
      this.hooks.beforeEffect(this, action, effect, input);
      this.carryOut(d, effect);
    }
    return decided.planned;
  }

  /** The deployment rows as the store holds them (the model has no `deactivate`). */
  private rows(): PlanRow[] {
    return [...this.deployments.values()].map((d) => ({
      hash: d.hash,
      state: d.state,
      refs: d.refs,
      everWanted: d.everWanted,
      reactivated: d.reactivated,
      retiredByHand: false,
      activatedAt: d.liveSince,
    }));
  }

  private aliasView(): Pick<PlanInput, "policy" | "roots" | "members"> {
    const { policy } = this.config;
    return { policy, roots: this.aliases.roots(policy), members: this.view() };
  }

  private carryOut(d: ModelDeployment, effect: Effect): void {
    if (effect.kind === "mark-wanted") {
      d.everWanted = true;
      d.reactivated = false;
      return;
    }
    if (effect.kind === "activate") {
      // retirer.ts revive: the closure is still in the store (the model has no GC)
      this.activate(d.hash, d.refs, REVIVE_PIPELINE_MS, REVIVE_READY_MS, effect.reason);
      return;
    }
    if (effect.stop !== "nothing") d.serviceUp = false;
    if (d.state !== effect.from) return; // the store's guarded transition changes nothing
    d.state = effect.to;
    if (d.state === "retired") this.retiredAt.set(d.hash, this.now);
    this.changed();
  }

  // ---- activation (activator.ts) ---------------------------------------------------------------

  /**
   * `hashd activate` (activator.ts): a live hash is left alone, but a draining one is brought
   * back (ready or idle as its service runs) as a fresh deployment again; otherwise the pipeline
   * reads the closure's refs half way through `pipelineMs` (fetch, manifest, GC root), then
   * writes the row as activating (a new generation; by hand, a hash that was wanted starts over:
   * not wanted since, reactivated; the agent's own activation, `wanted`, keeps its marks), the
   * units exist, and readiness holds `readyMs` later.
   */
  activate(
    hash: string,
    refs: readonly string[],
    pipelineMs: number,
    readyMs: number,
    wanted?: string,
  ): void {
    if (!this.up) return;
    if (wanted === undefined) this.askedByHand.set(hash, this.now);
    if (this.pipelines.has(hash)) return;
    const live = this.deployments.get(hash);
    if (live !== undefined && LIVE.has(live.state)) {
      if (live.state !== "draining" || wanted !== undefined) return;
      live.state = live.serviceUp ? "ready" : "idle";
      live.reactivated = live.everWanted || live.reactivated;
      live.everWanted = false;
      this.changed();
      return;
    }
    const epoch = this.epoch;
    const pending = { refs: null as string[] | null, since: this.now };
    this.pipelines.set(hash, pending);
    this.hooks.schedule(pipelineMs / 2, () => {
      if (this.epoch !== epoch || this.pipelines.get(hash) !== pending) return;
      pending.refs = [...refs];
      pending.since = this.now;
      this.changed();
    });
    this.hooks.schedule(pipelineMs, () => {
      if (this.epoch !== epoch) return;
      this.pipelines.delete(hash);
      const old = this.deployments.get(hash);
      const d: ModelDeployment = {
        hash,
        state: "activating",
        refs: [...refs],
        everWanted: wanted !== undefined && (old?.everWanted ?? false),
        reactivated:
          wanted !== undefined
            ? (old?.reactivated ?? false)
            : (old?.everWanted ?? false) || (old?.reactivated ?? false),
        generation: (old?.generation ?? 0) + 1,
        serviceUp: true,
        liveSince: this.now,
      };
      this.deployments.set(hash, d);
      this.changed();
      this.checkReadiness(d, readyMs);
    });
  }

  /** Readiness is recorded without a state guard, by generation only (activator.ts transition). */
  private checkReadiness(d: ModelDeployment, readyMs: number): void {
    const epoch = this.epoch;
    const generation = d.generation;
    this.hooks.schedule(readyMs, () => {
      if (this.epoch !== epoch || d.generation !== generation) return;
      d.state = "ready";
      d.serviceUp = true;
      this.changed();
    });
  }

  // ---- load: requests through this member's ingress, and holds ---------------------------------

  /** A request starts on a local live hash; returns its end, to call once. */
  enter(hash: string): () => void {
    const epoch = this.epoch;
    if (!this.busy(hash)) this.busyFrom.set(hash, this.now);
    this.inFlight.set(hash, this.inFlightOf(hash) + 1);
    this.touch(hash);
    const d = this.deployments.get(hash);
    if (d) d.serviceUp = true; // the socket starts the service
    return () => {
      if (this.epoch !== epoch) return; // the ingress died with the agent
      const n = this.inFlightOf(hash) - 1;
      if (n > 0) this.inFlight.set(hash, n);
      else this.inFlight.delete(hash);
      this.touch(hash);
    };
  }

  /**
   * The ingress answered a client pinned to `hash` by a sticky cookie of `maxAgeMs`: such clients
   * may come back until now + maxAgeMs (reported as stickyUntil, HashReport).
   */
  stickyRequest(hash: string, maxAgeMs: number): void {
    const until = Math.round(this.now + maxAgeMs);
    const held = this.sticky.get(hash);
    if (held === undefined || held.until <= this.now) {
      this.sticky.set(hash, { until, extensions: [{ at: this.now, until }] });
      return;
    }
    if (until <= held.until) return;
    held.until = until;
    held.extensions.push({ at: this.now, until });
  }

  /** Until when sticky clients of `hash` last seen here may come back, if that is still ahead. */
  stickyUntil(hash: string): number | undefined {
    const held = this.sticky.get(hash);
    if (held === undefined) return undefined;
    if (held.until > this.now) return held.until;
    this.sticky.delete(hash);
    return undefined;
  }

  /**
   * Since when this ingress has said that sticky clients of `hash` may come back after now: the
   * first extension of the current stretch that reaches beyond now (facts for the checker: a
   * member that saw only earlier, lapsed times could not know of a later one before gossip
   * carried it).
   */
  stickySince(hash: string): number | undefined {
    if (this.stickyUntil(hash) === undefined) return undefined;
    return this.sticky.get(hash)?.extensions.find((e) => e.until > this.now)?.at;
  }

  /** POST /v1/holds */
  acquireHold(hash: string, ttlMs: number): string {
    if (!this.busy(hash)) this.busyFrom.set(hash, this.now);
    const { id } = this.holds.acquire(hash, ttlMs / 1000);
    this.touch(hash);
    return id;
  }

  /** POST /v1/holds/:id/renew; false on a 404 (expired, released or never granted here). */
  renewHold(id: string, ttlMs: number): boolean {
    return answer(() => this.holds.renew(id, ttlMs / 1000)) !== undefined;
  }

  /** DELETE /v1/holds/:id */
  releaseHold(id: string): void {
    const hold = answer(() => this.holds.get(id));
    if (hold === undefined) return;
    this.holds.release(id);
    this.touch(hold.hash);
  }

  busySince(hash: string): number {
    return this.busyFrom.get(hash) ?? this.now;
  }

  private touch(hash: string): void {
    this.lastActivity.set(hash, this.now);
  }

  private busy(hash: string): boolean {
    return this.inFlightOf(hash) > 0 || this.holdsOf(hash) > 0;
  }

  /**
   * unit-watch.ts and the idle scaler: a service idle for idleStopMs is stopped (ready -> idle;
   * a draining one keeps its state), and a service a connection started shows as ready again.
   */
  watchUnits(): void {
    if (!this.up) return;
    let changed = false;
    for (const d of this.deployments.values()) {
      if (d.state === "ready" || d.state === "draining") {
        const last = this.lastActivity.get(d.hash) ?? d.liveSince;
        if (d.serviceUp && !this.busy(d.hash) && this.now - last >= this.config.idleStopMs) {
          d.serviceUp = false;
          if (d.state === "ready") {
            d.state = "idle";
            changed = true;
          }
        }
      } else if (d.state === "idle" && d.serviceUp) {
        d.state = "ready";
        changed = true;
      }
    }
    if (changed) this.changed();
  }

  // ---- membership ------------------------------------------------------------------------------

  crash(): void {
    this.sim.crash(this.index);
    this.forget();
  }

  /**
   * `systemctl stop hashd` (an upgrade, a restart): the agent stops its loops and its ingress,
   * then leaves the cluster (announces "left", lingers 500 ms so it spreads) and exits. Its
   * services keep running under systemd.
   */
  stopGracefully(): void {
    this.forget();
    this.stopping = true;
    this.left = true;
    this.node.leave(this.now);
    const epoch = this.epoch;
    this.hooks.schedule(500, () => {
      if (this.epoch === epoch && this.stopping) this.sim.crash(this.index);
    });
  }

  /** What dies with the process. */
  private forget(): void {
    this.epoch++;
    this.inFlight.clear();
    this.sticky.clear();
    this.pipelines.clear();
  }

  /**
   * A new process: a fresh gossip node (later boot id) that restores the alias table from the
   * history, reconcile (adopt what systemd runs), a fresh planner, publish, then join the seeds
   * (cluster.ts join: the core retries them while alone and reconnects from then on).
   */
  restart(): void {
    this.stopping = false;
    this.left = false;
    this.sim.restart(this.index, []);
    this.node.restoreAliases(this.aliases.latestRecords(), this.now);
    this.memory = this.newMemory();
    this.holds = this.newHolds();
    this.lastPublished = undefined;
    this.lastResult = null;
    for (const d of this.deployments.values()) {
      if (!LIVE.has(d.state)) continue;
      if (d.state === "activating") this.checkReadiness(d, 500);
      else d.state = d.serviceUp ? "ready" : "idle";
    }
    this.publish();
    this.node.join(this.config.seeds(), this.now);
  }

  /** local-changes.ts in compose/: publish at once (queueMicrotask). */
  private changed(): void {
    this.publish();
  }
}

/** Whether two reports say the same, in the same order (what publishing compares). */
function sameReports(a: readonly HashReport[], b: readonly HashReport[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as HashReport;
    const y = b[i] as HashReport;
    if (x.hash !== y.hash || x.state !== y.state || x.inFlight !== y.inFlight || x.holds !== y.holds)
      return false;
    if (x.stickyUntil !== y.stickyUntil) return false;
    if (x.refs !== y.refs && (x.refs.length !== y.refs.length || x.refs.some((r, j) => r !== y.refs[j])))
      return false;
  }
  return true;
}

/** The holds API's answer, or undefined for its error answer (a HashdError: 404 and the like). */
function answer<T>(call: () => T): T | undefined {
  try {
    return call();
  } catch (e) {
    if (e instanceof HashdError) return undefined;
    throw e;
  }
}
