/**
 * What users and services do to the simulated cluster: builds and deploys of chains, alias
 * switches (sometimes several aliases in one write), races of alias writes from several members
 * at once, rollbacks, preview aliases that share hashes with prod, pins, old versions activated
 * again, requests (by alias or by hash URL) that call their references while they run, and jobs
 * that keep a hash busy with renewed holds.
 */
import type { AliasView } from "../../../src/agent/aliases/alias-service.ts";
import { HashdError } from "../../../src/lib/errors.ts";
import { randomBetween, randomFloat, randomInt, shuffle } from "../../../src/lib/prng.ts";
import {
  type AliasTarget,
  type AliasWrite,
  heaviestOf,
  MAX_SPLIT_TARGETS,
} from "../../../src/model/alias-record.ts";
import { ROLLOUT_DEFAULTS, type RolloutState, type RolloutStatus } from "../../../src/model/rollout-state.ts";
import { type AgentModel, LIVE } from "./agent-model.ts";
import type { App } from "./catalog.ts";
import type { World } from "./world.ts";

export type RequestFailure = "no route" | "peer unreachable" | "not live at the peer";

export interface BrokenCall {
  at: number;
  member: string;
  caller: string;
  callee: string;
  why: RequestFailure;
  /**
   * The callee had retired on this member before the caller was activated here: a deploy of a new
   * dependent of a draining hash raced its retirement (the activation of the draining hash was a
   * no-op, and nothing held it until the dependent existed). Otherwise top-down was broken.
   */
  deployRace: boolean;
}

export interface WorkloadStats {
  requests: number;
  /** requests by alias that failed, by reason (the product aims at none) */
  aliasFailures: Partial<Record<RequestFailure, number>>;
  /**
   * ... of which to a hash live on some member but already retired on another, with no crash or
   * partition anywhere in the 60 s before: retirement took away what an alias still routes to
   * (the product promises none of these)
   */
  aliasFailuresCalm: number;
  /** ... of which to a hash that serves nowhere (retired everywhere: a rollback raced its last retirement) */
  aliasFailuresRetired: number;
  /** requests by hash URL that failed (old versions retire: expected) */
  hashFailures: Partial<Record<RequestFailure, number>>;
  /** a running request of a dependent could not reach one of its references */
  brokenCalls: BrokenCall[];
  deploys: number;
  aliasWrites: number;
  /** alias writes that split the alias between 2-4 hashes (some of them a rollout's step) */
  weightedWrites: number;
  /** alias writes that carry a rollout (running, paused, aborted or done) */
  rolloutWrites: number;
  /** clients pinned to a hash by a sticky cookie, and their returns */
  stickyClients: number;
  stickyRequests: number;
  /** returns of a sticky client that found its hash retired where it was routed */
  stickyFailures: number;
  /** races: two or three members writing the same alias within 50 ms of each other */
  aliasRaces: number;
  rollbacks: number;
  rollbacksRefused: number;
  pins: number;
  jobs: number;
  /** renewals that a later agent process than the one that granted the lease accepted */
  holdsRestored: number;
}

interface Job {
  member: number;
  hash: string;
  /** the hold's id, as the agent granted it */
  lease: string;
  /** the agent process that granted or last renewed it */
  epoch: number;
}

export class Workload {
  /** new requests and jobs start while true */
  traffic = true;
  /** deploys and alias changes happen while true */
  ops = true;
  readonly stats: WorkloadStats = {
    requests: 0,
    aliasFailures: {},
    aliasFailuresCalm: 0,
    aliasFailuresRetired: 0,
    hashFailures: {},
    brokenCalls: [],
    deploys: 0,
    aliasWrites: 0,
    weightedWrites: 0,
    rolloutWrites: 0,
    stickyClients: 0,
    stickyRequests: 0,
    stickyFailures: 0,
    aliasRaces: 0,
    rollbacks: 0,
    rollbacksRefused: 0,
    pins: 0,
    jobs: 0,
    holdsRestored: 0,
  };
  /** jobs running now (a job's hash must not be retired under it on its member) */
  readonly jobs = new Set<Job>();
  private openRequests = 0;
  private previews = 0;

  constructor(private readonly w: World) {}

  get quiet(): boolean {
    return this.openRequests === 0 && this.jobs.size === 0 && this.stickyLive === 0;
  }

  /** sticky clients still coming back */
  private stickyLive = 0;

  /** Every app deployed to every host and aliased. */
  bootstrap(): void {
    for (const app of this.w.catalog.apps) {
      const top = app.hashes.get(app.chain[0] as string) as string;
      for (const agent of this.w.agents) this.deployChain(agent, this.w.catalog.closureOf(top));
      this.w.at(8000, () => this.setAliases({ [app.alias]: top }));
    }
  }

  start(requestGapMs: number, opGapMs: number, jobGapMs: number): void {
    this.process(
      requestGapMs,
      () => this.traffic,
      () => this.request(),
    );
    this.process(
      jobGapMs,
      () => this.traffic,
      () => this.startJob(),
    );
    this.process(
      opGapMs,
      () => this.ops,
      () => this.operation(),
    );
  }

  private process(meanGapMs: number, on: () => boolean, fn: () => void): void {
    const next = () => {
      if (!on()) return;
      fn();
      this.w.at(exponential(this.w, meanGapMs), next);
    };
    this.w.at(exponential(this.w, meanGapMs), next);
  }

  private operation(): void {
    const r = randomFloat(this.w.rng);
    const apps = this.w.catalog.apps;
    if (r < 0.33) this.deploy(apps[randomInt(this.w.rng, apps.length)] as App);
    else if (r < 0.45) this.rollback();
    else if (r < 0.54) this.openPreview();
    else if (r < 0.63) this.closePreview();
    else if (r < 0.72) this.pinOrUnpin();
    else if (r < 0.8) this.activateOld();
    else if (r < 0.9) this.raceAliases(apps[randomInt(this.w.rng, apps.length)] as App);
    else this.deploy(this.w.catalog.appOf("prod"), true);
  }

  // ---- deploys and aliases ---------------------------------------------------------------------

  /** Build and deploy to every up host (or a few), then, most of the time, switch the alias. */
  private deploy(app: App, withApiAlias = false): void {
    const { catalog, rng } = this.w;
    const top = catalog.rebuild(app);
    const api = app.hashes.get(app.chain[1] ?? "");
    this.stats.deploys++;
    const hosts = this.someHosts(randomFloat(rng) < 0.8);
    for (const agent of hosts) this.deployChain(agent, catalog.closureOf(top));
    this.w.trace(`deploy ${app.alias} ${short(top)} to ${hosts.map((a) => a.name).join(",")}`);
    if (randomFloat(rng) < 0.15) return; // deployed, never aliased: kept until deactivated
    this.w.at(randomBetween(rng, 4000, 12_000), () => {
      // `hashd deploy` reports failure when no host got it: nobody aliases that
      if (!catalog.apps.includes(app) || !this.deployed(top)) return;
      const entries: Record<string, string> = { [app.alias]: top };
      if (withApiAlias && api !== undefined) entries.api = api;
      if (!withApiAlias && randomFloat(rng) < 0.35) this.weightedSwitch(app, top);
      else this.setAliases(entries);
    });
  }

  /**
   * A weighted write instead of a plain switch: the new top and 1-3 earlier versions this member
   * can see running (the alias's current targets first), weights summing to 100; half of them as a
   * step of a rollout from the alias's current hash (running, paused, aborted or done; a running
   * one at its last step points at the canary alone, its baseline kept by the rollout alone).
   */
  private weightedSwitch(app: App, top: string): void {
    const { rng, catalog } = this.w;
    const agent = this.someAgent();
    if (!agent) return;
    const current = agent.aliases.current(app.alias);
    const service = app.chain[0] as string;
    const earlier = [
      ...(current?.split?.map((t) => t.hash) ?? (current ? [current.hash] : [])),
      ...[...catalog.builds.values()]
        .filter((b) => b.service === service)
        .map((b) => b.hash)
        .reverse(),
    ].filter((h, i, all) => h !== top && all.indexOf(h) === i && this.visible(agent, h));
    const n = Math.min(earlier.length, randomBetween(rng, 1, MAX_SPLIT_TARGETS - 1));
    if (n === 0) {
      this.setAliasesOn(agent, { [app.alias]: top });
      return;
    }
    const hashes = [top, ...earlier.slice(0, n)];
    const split = weights(rng, hashes);
    const from = current?.hash;
    let write: AliasWrite = { name: app.alias, hash: heaviestOf(split), split };
    if (from !== undefined && from !== top && randomFloat(rng) < 0.5) {
      const steps = [10, 50, 100];
      const step = randomInt(rng, steps.length);
      const statuses: RolloutStatus[] = ["running", "running", "paused", "aborted", "done"];
      const status = statuses[randomInt(rng, statuses.length)] as RolloutStatus;
      const rollout: RolloutState = {
        kind: "rollout",
        from,
        to: top,
        steps,
        step,
        stepSince: Math.round(this.w.now),
        stepTimeMs: ROLLOUT_DEFAULTS.stepTimeMs,
        intervalMs: ROLLOUT_DEFAULTS.intervalMs,
        limits: { ...ROLLOUT_DEFAULTS.limits },
        status,
        note: "",
        startedAt: Math.round(this.w.now),
      };
      const w = steps[step] as number;
      write =
        w >= 100 || status === "aborted" || status === "done"
          ? { name: app.alias, hash: status === "aborted" ? from : top, rollout }
          : {
              name: app.alias,
              hash: w > 50 ? top : from,
              split: [
                { hash: from, weight: 100 - w },
                { hash: top, weight: w },
              ],
              rollout,
            };
      this.stats.rolloutWrites++;
    }
    this.writeOn(agent, write);
  }

  /** AliasService.write: one record as given (a rollout's step, a weighted write). */
  private writeOn(agent: AgentModel, write: AliasWrite): void {
    try {
      agent.aliases.write([write]);
      this.stats.aliasWrites++;
      if (write.split !== undefined) this.stats.weightedWrites++;
      const targets = write.split?.map((t) => `${short(t.hash)}:${t.weight}`).join(",") ?? short(write.hash);
      const rollout = write.rollout
        ? ` (rollout ${write.rollout.status} from ${short(write.rollout.from)})`
        : "";
      this.w.trace(`alias write on ${agent.name}: ${write.name}=${targets}${rollout}`);
    } catch (e) {
      if (!(e instanceof HashdError)) throw e;
    }
  }

  /**
   * `hashd deploy` on one host: each hash of the closure in turn, bottom first; stops if the agent
   * dies. An activation of a hash whose pipeline another deploy started joins it and waits for it
   * (activator.ts), so the next hash is not activated before this one's row is written.
   */
  private deployChain(agent: AgentModel, hashes: readonly string[], i = 0): void {
    const hash = hashes[i];
    if (hash === undefined || !agent.up) return;
    const epoch = agent.epoch;
    const pipelineMs = randomBetween(this.w.rng, 100, 1500);
    agent.activate(hash, this.w.catalog.refsOf(hash), pipelineMs, randomBetween(this.w.rng, 200, 3000));
    const next = () => {
      if (agent.epoch !== epoch) return;
      if (agent.activating(hash)) this.w.at(50, next);
      else this.deployChain(agent, hashes, i + 1);
    };
    this.w.at(pipelineMs + 10, next);
  }

  private setAliases(entries: Record<string, string | null>): void {
    const agent = this.someAgent();
    if (agent) this.setAliasesOn(agent, entries);
  }

  private setAliasesOn(agent: AgentModel, entries: Record<string, string | null>): void {
    try {
      agent.aliases.set(entries);
      this.stats.aliasWrites++;
      this.w.trace(`alias set on ${agent.name}: ${describe(entries)}`);
    } catch (e) {
      if (!(e instanceof HashdError)) throw e;
    }
  }

  /**
   * Two or three members write one alias within 50 ms of each other, each before it has heard of
   * the others' writes (two people deploying, a rollback racing a switch): each to a version of
   * the app's top that runs where it can see, sometimes with the "api" alias to what that version
   * references in the same write, sometimes as a rollback. Every write wins on its own member until
   * gossip carries the others; the latest (HLC) then wins everywhere.
   */
  private raceAliases(app: App): void {
    const { rng, catalog } = this.w;
    const up = shuffle(rng, this.w.upAgents());
    if (up.length < 2) return;
    const writers = up.slice(0, randomBetween(rng, 2, Math.min(3, up.length)));
    const top = app.chain[0] as string;
    const versions = [...catalog.builds.values()].filter((b) => b.service === top).map((b) => b.hash);
    this.stats.aliasRaces++;
    this.w.trace(`alias race on ${app.alias} from ${writers.map((a) => a.name).join(",")}`);
    for (const agent of writers) {
      const epoch = agent.epoch;
      const asRollback = randomFloat(rng) < 0.25;
      const withApi = randomFloat(rng) < 0.3;
      const pick = randomInt(rng, 4);
      this.w.at(randomInt(rng, 50), () => {
        if (!agent.up || agent.epoch !== epoch || !catalog.apps.includes(app)) return;
        if (asRollback && agent.aliases.resolve(app.alias) !== undefined) {
          this.rollbackOn(agent, app.alias);
          return;
        }
        // one of the latest versions this member can see running
        const seen = versions.filter((h) => this.visible(agent, h));
        const hash = seen[Math.max(0, seen.length - 1 - pick)];
        if (hash === undefined) return;
        const entries: Record<string, string> = { [app.alias]: hash };
        const api = catalog.refsOf(hash)[0];
        if (withApi && api !== undefined && this.visible(agent, api)) entries.api = api;
        this.setAliasesOn(agent, entries);
      });
    }
  }

  /** `hashd rollback <alias>`: refused when the previous hash runs nowhere this host can see. */
  private rollback(): void {
    const agent = this.someAgent();
    const names = agent?.aliases.list().map((a) => a.name) ?? [];
    if (!agent || names.length === 0) return;
    this.rollbackOn(agent, names[randomInt(this.w.rng, names.length)] as string);
  }

  private rollbackOn(agent: AgentModel, name: string): void {
    try {
      const v = agent.aliases.rollback(name, (h) => this.visible(agent, h));
      this.stats.rollbacks++;
      this.w.trace(`rollback on ${agent.name}: ${name}=${short(v.hash)}`);
    } catch (e) {
      if (!(e instanceof HashdError)) throw e;
      this.stats.rollbacksRefused++;
    }
  }

  /** A preview alias: prod's chain with its top rebuilt, every hash below shared with prod. */
  private openPreview(): void {
    const { catalog } = this.w;
    if (catalog.apps.filter((a) => a.alias.startsWith("pr-")).length >= 2) return;
    const app = catalog.preview(catalog.appOf("prod"), `pr-${++this.previews}`);
    const top = app.hashes.get(app.chain[0] as string) as string;
    const hosts = this.someHosts(false);
    for (const agent of hosts) this.deployChain(agent, catalog.closureOf(top));
    this.w.trace(`preview ${app.alias} ${short(top)} to ${hosts.map((a) => a.name).join(",")}`);
    this.w.at(randomBetween(this.w.rng, 4000, 10_000), () => {
      if (this.deployed(top)) this.setAliases({ [app.alias]: top });
    });
  }

  private closePreview(): void {
    const previews = this.w.catalog.apps.filter((a) => a.alias.startsWith("pr-"));
    const app = previews[randomInt(this.w.rng, previews.length)];
    if (!app) return;
    this.w.catalog.dropApp(app.alias);
    this.setAliases({ [app.alias]: null });
  }

  private pinOrUnpin(): void {
    const agent = this.someAgent();
    if (!agent) return;
    const pins = agent.aliases.pins();
    try {
      if (pins.length > 0 && randomFloat(this.w.rng) < 0.5) {
        const hash = pins[randomInt(this.w.rng, pins.length)] as string;
        agent.aliases.unpin(hash);
        this.w.trace(`unpin on ${agent.name}: ${short(hash)}`);
      } else {
        // one that runs somewhere this host can see (a pin of a retired hash keeps nothing running)
        const hash = this.w.catalog.someBuild().hash;
        if (!this.visible(agent, hash)) return;
        agent.aliases.pin(hash);
        this.stats.pins++;
        this.w.trace(`pin on ${agent.name}: ${short(hash)}`);
      }
      this.stats.aliasWrites++;
    } catch (e) {
      if (!(e instanceof HashdError)) throw e;
    }
  }

  /** "Activate it again, then set the alias": an old version comes back (everWanted is kept). */
  private activateOld(): void {
    const { catalog, rng } = this.w;
    const build = catalog.someBuild();
    const hosts = this.someHosts(randomFloat(rng) < 0.5);
    for (const agent of hosts) this.deployChain(agent, catalog.closureOf(build.hash));
    this.w.trace(`activate old ${short(build.hash)} on ${hosts.map((a) => a.name).join(",")}`);
    const app = catalog.apps.find((a) => a.chain[0] === build.service);
    if (app && randomFloat(rng) < 0.6) {
      this.w.at(randomBetween(rng, 3000, 8000), () => {
        if (this.deployed(build.hash)) this.setAliases({ [app.alias]: build.hash });
      });
    }
  }

  // ---- requests --------------------------------------------------------------------------------

  private request(): void {
    const entry = this.someAgent();
    if (!entry) return;
    this.stats.requests++;
    const aliases = entry.aliases.list();
    const byAlias = aliases.length > 0 && randomFloat(this.w.rng) < 0.8;
    const hash = byAlias
      ? this.pick(aliases[randomInt(this.w.rng, aliases.length)] as AliasView)
      : this.w.catalog.someBuild().hash;
    if (byAlias && randomFloat(this.w.rng) < 0.15) this.stickyClient(entry, hash);
    const failed = this.call(entry, hash, requestDuration(this.w));
    if (failed) {
      if (byAlias) {
        this.w.trace(`alias request on ${entry.name} for ${short(hash)} failed: ${failed}`);
        // (a copy being activated again, after a rollback to a hash retired everywhere, serves nothing yet)
        if (!this.w.agents.some((a) => a.serves(hash))) this.stats.aliasFailuresRetired++;
        else if (
          this.w.agents.some((a) => a.retiredAt.has(hash)) &&
          !this.w.disruptions.anyWithin(this.w.now, 60_000)
        )
          this.stats.aliasFailuresCalm++;
      }
      const counts = byAlias ? this.stats.aliasFailures : this.stats.hashFailures;
      counts[failed] = (counts[failed] ?? 0) + 1;
    }
  }

  /** The hash a request by alias goes to: one of a split's targets by weight, else the alias's. */
  private pick(alias: AliasView): string {
    if (alias.split === undefined) return alias.hash;
    let r = randomInt(this.w.rng, 100);
    for (const t of alias.split) {
      if (r < t.weight) return t.hash;
      r -= t.weight;
    }
    return alias.hash;
  }

  /**
   * A client pinned to `hash` by a sticky cookie (max age 5-30 s): it comes back every 1-8 s for
   * 5-90 s, each time through a random member's ingress, to the same hash; each answer tells the
   * ingress of the member that served it (which runs the hash, so has a report to put it on) that
   * such clients may come back until then (stickyUntil). It stops with the traffic.
   */
  private stickyClient(first: AgentModel, hash: string): void {
    const { rng } = this.w;
    const maxAgeMs = randomBetween(rng, 5000, 30_000);
    const endAt = this.w.now + randomBetween(rng, 5000, 90_000);
    this.stats.stickyClients++;
    this.stickyLive++;
    if (first.isLive(hash)) first.stickyRequest(hash, maxAgeMs);
    const back = () => {
      const entry = this.someAgent();
      if (!this.traffic || this.w.now >= endAt) {
        this.stickyLive--;
        return;
      }
      if (entry) {
        this.stats.stickyRequests++;
        // the ingress of the member that served it (it runs the hash, so it reports it) records it
        const failed = this.call(entry, hash, requestDuration(this.w), (server) =>
          server.stickyRequest(hash, maxAgeMs),
        );
        if (failed !== null) {
          this.stats.stickyFailures++;
          this.w.trace(`sticky request on ${entry.name} for ${short(hash)} failed: ${failed}`);
        }
      }
      this.w.at(randomBetween(rng, 1000, Math.min(8000, maxAgeMs)), back);
    };
    this.w.at(randomBetween(rng, 1000, Math.min(8000, maxAgeMs)), back);
  }

  /**
   * One request for `hash` entering at `from`'s ingress, routed as route-table.ts does (the local
   * socket while live here, else a member gossip says runs it, ready ones first); while it runs,
   * the service calls each hash it references through its own host's ingress.
   */
  private call(
    from: AgentModel,
    hash: string,
    durationMs: number,
    served?: (server: AgentModel) => void,
  ): RequestFailure | null {
    const server = this.route(from, hash);
    if (typeof server === "string") return server;
    served?.(server);
    const leave = server.enter(hash);
    this.openRequests++;
    const epoch = server.epoch;
    for (const ref of this.w.catalog.refsOf(hash)) {
      const startMs = randomInt(this.w.rng, Math.max(1, durationMs / 3));
      const subMs = randomInt(this.w.rng, Math.max(1, durationMs - startMs));
      this.w.at(startMs, () => {
        if (server.epoch !== epoch) return; // the service's calls went through the dead ingress
        const why = this.call(server, ref, subMs);
        if (why !== null) {
          const retired = server.retiredAt.get(ref);
          const deployRace =
            retired !== undefined && retired <= (server.deployments.get(hash)?.liveSince ?? 0);
          this.stats.brokenCalls.push({
            at: this.w.now,
            member: server.name,
            caller: hash,
            callee: ref,
            why,
            deployRace,
          });
          this.w.trace(
            `BROKEN CALL on ${server.name}: ${short(hash)} -> ${short(ref)}: ${why}${deployRace ? " (deploy race)" : ""}`,
          );
        }
      });
    }
    this.w.at(durationMs, () => {
      this.openRequests--;
      leave();
    });
    return null;
  }

  private route(from: AgentModel, hash: string): AgentModel | RequestFailure {
    if (from.isLive(hash)) return from;
    const runners = from.node
      .whoRuns(hash)
      .filter((r) => r.member.name !== from.name && r.report.state !== "failed");
    const ready = runners.filter((r) => r.report.state === "ready");
    const pool = ready.length
      ? ready
      : runners.filter((r) => r.report.state === "idle" || r.report.state === "draining");
    const pick = pool[randomInt(this.w.rng, pool.length)];
    if (!pick) return "no route";
    const peer = this.w.agentNamed(pick.member.name);
    if (!peer?.up || !this.w.sim.canReach(from.index, peer.index)) return "peer unreachable";
    return peer.isLive(hash) ? peer : "not live at the peer";
  }

  // ---- jobs with holds -------------------------------------------------------------------------

  /**
   * Work that outlives a request: a service takes a hold on its own hash, renews it every third
   * of its lease (not while its agent is down: the call fails), takes a new one when a renewal
   * gets a 404 (the lease ran out), and releases it when done (docs/holds.md).
   */
  private startJob(): void {
    const agent = this.someAgent();
    if (!agent) return;
    const live = [...agent.deployments.values()].filter(
      (d) => d.state !== "activating" && agent.isLive(d.hash),
    );
    const d = live[randomInt(this.w.rng, live.length)];
    if (!d) return;
    const ttlMs = randomBetween(this.w.rng, 3000, 15_000);
    const job: Job = {
      member: agent.index,
      hash: d.hash,
      lease: agent.acquireHold(d.hash, ttlMs),
      epoch: agent.epoch,
    };
    this.jobs.add(job);
    this.stats.jobs++;
    const endAt = this.w.now + randomBetween(this.w.rng, 1000, 40_000);
    const renew = () => {
      if (!this.jobs.has(job)) return;
      if (this.w.now >= endAt) {
        if (agent.up) agent.releaseHold(job.lease);
        this.jobs.delete(job);
        return;
      }
      if (agent.up) {
        if (agent.renewHold(job.lease, ttlMs)) {
          if (job.epoch !== agent.epoch) this.stats.holdsRestored++;
        } else job.lease = agent.acquireHold(job.hash, ttlMs);
        job.epoch = agent.epoch;
      }
      this.w.at(Math.min(ttlMs / 3, endAt - this.w.now), renew);
    };
    this.w.at(ttlMs / 3, renew);
  }

  /** The job's hash was stopped under it (its service is gone): the job dies. */
  killJobsOf(member: number, hash: string): Job[] {
    const killed = [...this.jobs].filter((j) => j.member === member && j.hash === hash);
    for (const j of killed) this.jobs.delete(j);
    return killed;
  }

  // ---- helpers ---------------------------------------------------------------------------------

  /** `hashd deploy` succeeded somewhere: the hash is ready (or idle) on an up host. */
  private deployed(hash: string): boolean {
    return this.w.upAgents().some((a) => {
      const state = a.deployments.get(hash)?.state;
      return state === "ready" || state === "idle";
    });
  }

  /** start-serving.ts isLive: live here, or some other member (alive or suspect) reports it live. */
  private visible(agent: AgentModel, hash: string): boolean {
    return (
      agent.isLive(hash) ||
      agent.node.whoRuns(hash).some((r) => r.member.name !== agent.name && LIVE.has(r.report.state))
    );
  }

  private someAgent(): AgentModel | undefined {
    const up = this.w.upAgents();
    return up[randomInt(this.w.rng, up.length)];
  }

  /** Every up host, or a random non-empty subset of them. */
  private someHosts(all: boolean): AgentModel[] {
    const up = this.w.upAgents();
    if (all || up.length <= 1) return up;
    const picked = up.filter(() => randomFloat(this.w.rng) < 0.5);
    return picked.length > 0 ? picked : [up[randomInt(this.w.rng, up.length)] as AgentModel];
  }
}

/** Mostly short, some long (a stream, an upload): a few last longer than the quiet period. */
const requestDuration = (w: World): number => {
  const r = randomFloat(w.rng);
  if (r < 0.7) return randomBetween(w.rng, 20, 500);
  if (r < 0.95) return randomBetween(w.rng, 500, 5000);
  return randomBetween(w.rng, 5000, 40_000);
};

/** Integer weights from 1 to 99 summing to 100, one per hash, in the hashes' order. */
const weights = (rng: World["rng"], hashes: readonly string[]): AliasTarget[] => {
  const cuts = new Set<number>();
  while (cuts.size < hashes.length - 1) cuts.add(randomBetween(rng, 1, 99));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), 100];
  return hashes.map((hash, i) => ({ hash, weight: (bounds[i + 1] as number) - (bounds[i] as number) }));
};

const exponential = (w: World, meanMs: number): number => -Math.log(1 - randomFloat(w.rng)) * meanMs;

export const short = (hash: string | null): string => (hash === null ? "(none)" : hash.slice(0, 6));

const describe = (entries: Record<string, string | null>): string =>
  Object.entries(entries)
    .map(([k, v]) => `${k}=${short(v)}`)
    .join(" ");
