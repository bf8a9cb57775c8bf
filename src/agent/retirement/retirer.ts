import { type Deployment, LIVE_STATES } from "../../model/deployment.ts";
import type { Nix } from "../../nix/nix.ts";
import type { Systemctl } from "../../systemd/systemctl.ts";
import type { AliasService, RetentionPolicy } from "../aliases/alias-service.ts";
import type { Activator } from "../lifecycle/activator.ts";
import type { StateStore } from "../state/store.ts";
import { effectOf, needsServiceState } from "./effects.ts";
import {
  type Action,
  type MemberView,
  type PlannerResult,
  type RetiredHash,
  type RetirementPlanner,
  wantedIn,
} from "./planner.ts";
import { sameVerdict, type VerdictCause } from "./verdicts.ts";

export interface RetirerDeps {
  store: StateStore;
  systemctl: Systemctl;
  nix: Nix;
  activator: Activator;
  planner: RetirementPlanner;
  aliases: AliasService;
  policy: RetentionPolicy;
  /** every member this agent knows, itself included with its current report */
  members: () => MemberView[];
  log: (msg: string) => void;
  onChange: (d: Deployment) => void;
}

/**
 * The I/O half of retirement: runs the pure planner on the current cluster view and carries out
 * its actions on systemd, Nix and the database, one transaction (with its reason) per change.
 * What each action does is decided by the pure `effectOf` (retirement/effects.ts), which the
 * retirement simulator applies to its model of an agent.
 *
 * Right before it stops a hash, it reads the alias table and the row again: an alias write (a
 * rollback) or an activation that arrived since the planner ran keeps the hash. One that arrives
 * while the units stop is healed afterwards: a hash this agent retired that is wanted again is
 * activated again from the local store (the planner's `revive`).
 */
export class Retirer {
  private lastVerdicts = new Map<string, VerdictCause>();
  /** hashes wanted again whose closure is gone from the store (told once, not looked for again) */
  private readonly unrevivable = new Set<string>();
  verdicts: PlannerResult["verdicts"] = new Map();
  /** the planner's known members as last saved */
  private savedMembers: string;

  constructor(private readonly deps: RetirerDeps) {
    // A restarted agent's gossip view starts empty: the planner's majority must not.
    deps.planner.remember(deps.store.knownMembers());
    this.savedMembers = deps.planner.knownMembers().join(" ");
  }

  async tick(now: number): Promise<PlannerResult> {
    const { store, planner, aliases, policy, activator } = this.deps;
    const rows = store.list();
    const live = rows.filter((d) => LIVE_STATES.has(d.state));
    const result = planner.step({
      now,
      members: this.deps.members(),
      roots: aliases.roots(policy),
      formerRoots: aliases.formerRoots(),
      local: live.map((d) => ({
        hash: d.hash,
        state: d.state,
        keepForever: policy.kind === "keep",
        everWanted: d.everWanted,
        reactivated: d.reactivated,
        since: d.activatedAt,
      })),
      retired: retiredByRetirer(rows),
      unresolved: activator
        .activations()
        .filter((a) => a.refs === null)
        .map((a) => a.hash),
    });
    this.verdicts = result.verdicts;
    const revived = new Set(result.actions.filter((a) => a.kind === "revive").map((a) => a.hash));
    for (const hash of this.unrevivable) if (!revived.has(hash)) this.unrevivable.delete(hash);
    this.saveMembers();
    this.recordVerdictChanges(result.verdicts, new Set(live.filter((d) => d.everWanted).map((d) => d.hash)));
    for (const action of result.actions) {
      if (this.deps.activator.isBusy(action.hash)) continue;
      try {
        await this.apply(action);
      } catch (e) {
        this.deps.log(`retirement ${action.kind} ${action.hash}: ${(e as Error).message}`);
      }
    }
    return result;
  }

  private async apply(action: Action): Promise<void> {
    const { store, systemctl, activator } = this.deps;
    const d = store.get(action.hash);
    if (!d) return;
    const units = activator.units(d.hash);
    const serviceActive =
      needsServiceState(action) &&
      (await systemctl.show([units.service], ["ActiveState"])).get(units.service)?.ActiveState === "active";
    const effect = effectOf(d, action, serviceActive);
    if (!effect) return;
    if (effect.kind === "mark-wanted") {
      store.markWanted(d.hash, effect.reason);
      return;
    }
    if (effect.kind === "activate") {
      await this.revive(d, effect.reason);
      return;
    }
    if (effect.stop === "service") await systemctl.stop([units.service]);
    if (effect.stop === "units-and-gc-root") {
      await activator.whileStopping(d.hash, () => this.retire(d, effect.reason));
      return;
    }
    this.changed(store.transition(d.hash, d.generation, effect.to, effect.reason, null, effect.from));
  }

  /** Stops a draining hash's units and drops its GC root, unless it is wanted again by now. */
  private async retire(d: Deployment, reason: string): Promise<void> {
    const { store, nix, activator } = this.deps;
    const now = store.get(d.hash);
    if (now?.state !== "draining" || now.generation !== d.generation) return;
    const why = this.wantedNow(d.hash);
    if (why !== undefined) {
      store.event(d.hash, "kept", `not retired: wanted again since the planner ran (${why})`);
      return;
    }
    // The socket goes first so that nothing new is queued; the service then gets its drain time.
    await activator.stopUnits(d);
    await nix.removeGcRoot(d.hash);
    this.changed(store.transition(d.hash, d.generation, "retired", reason, null, "draining"));
    this.deps.log(`retired ${d.hash} (${d.name}): ${reason}`);
  }

  /** Why `hash` is wanted with the alias table as it is now, or undefined. */
  private wantedNow(hash: string): string | undefined {
    const { aliases, policy, store } = this.deps;
    return wantedIn(aliases.roots(policy), this.deps.members(), retiredByRetirer(store.list())).get(hash);
  }

  /** Activates again a hash retired here that is wanted again, if its closure is still here. */
  private async revive(d: Deployment, reason: string): Promise<void> {
    const { nix, activator, store, log } = this.deps;
    if (this.unrevivable.has(d.hash)) return; // until it is unwanted again
    if (!(await nix.isValid(d.path))) {
      this.unrevivable.add(d.hash);
      store.event(
        d.hash,
        "not-revived",
        `${reason}, but ${d.path} is gone from the store: activate it again by hand`,
      );
      return;
    }
    log(`activating ${d.hash} (${d.name}) again: ${reason}`);
    // not awaited: readiness is the activator's; the hash is busy meanwhile, so ticks skip it
    void activator.activate({ path: d.path, wanted: reason }).catch((e: Error) => {
      log(`activating ${d.hash} again: ${e.message}`);
    });
  }

  private saveMembers(): void {
    const known = this.deps.planner.knownMembers();
    const key = known.join(" ");
    if (key === this.savedMembers) return;
    this.deps.store.setKnownMembers(known);
    this.savedMembers = key;
  }

  /** "Why is this hash still running?" is answered from events: one per change of verdict. */
  private recordVerdictChanges(verdicts: PlannerResult["verdicts"], retirable: Set<string>): void {
    for (const [hash, v] of verdicts) {
      if (!retirable.has(hash)) continue;
      const last = this.lastVerdicts.get(hash);
      if (last !== undefined && sameVerdict(last, v.cause)) continue;
      this.lastVerdicts.set(hash, v.cause);
      if (!v.wanted) this.deps.store.event(hash, "kept", v.reason);
    }
    for (const hash of this.lastVerdicts.keys()) if (!verdicts.has(hash)) this.lastVerdicts.delete(hash);
  }

  private changed(d: Deployment | undefined): void {
    if (d) this.deps.onChange(d);
  }
}

/** Rows the retirer retired (not deactivated by hand): brought back when wanted again. */
function retiredByRetirer(rows: readonly Deployment[]): RetiredHash[] {
  return rows
    .filter((d) => d.state === "retired" && !d.retiredByHand)
    .map((d) => ({ hash: d.hash, refs: d.refs }));
}
