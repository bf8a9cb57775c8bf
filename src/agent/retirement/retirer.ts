import type { Deployment } from "../../model/deployment.ts";
import type { Nix } from "../../nix/nix.ts";
import type { Systemctl } from "../../systemd/systemctl.ts";
import type { AliasService, RetentionPolicy } from "../aliases/alias-service.ts";
import type { Activator } from "../lifecycle/activator.ts";
import type { StateStore } from "../state/store.ts";
import { effectOf, needsServiceState } from "./effects.ts";
import { beforeStop, type PlanInput, plan, RetirerMemory } from "./plan.ts";
import type { Action, MemberView, PlannerResult, RetirementPlanner } from "./planner.ts";

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
 * The I/O half of retirement: gathers what a tick decides on (the clock, the cluster view, the
 * alias table, the deployment rows, the activations under way), lets the pure `plan`
 * (retirement/plan.ts) decide, and carries the decisions out on systemd, Nix and the database,
 * one transaction (with its reason) per change. What each action does to a deployment is the pure
 * `effectOf` (retirement/effects.ts). The retirement simulator runs the same `plan`, `effectOf`
 * and `beforeStop` on its model of an agent.
 *
 * Right before it stops a hash, it reads the alias table and the row again (`beforeStop`): an
 * alias write (a rollback) or an activation that arrived since the plan keeps the hash. One that
 * arrives while the units stop is healed afterwards: a hash this agent retired that is wanted
 * again is activated again from the local store (the planner's `revive`).
 */
export class Retirer {
  private readonly memory: RetirerMemory;
  verdicts: PlannerResult["verdicts"] = new Map();

  constructor(private readonly deps: RetirerDeps) {
    // A restarted agent's gossip view starts empty: the planner's majority must not.
    this.memory = new RetirerMemory(deps.planner, deps.store.knownMembers());
  }

  async tick(now: number): Promise<PlannerResult> {
    const { store, activator, log } = this.deps;
    const rows = store.list();
    const input: PlanInput = {
      ...this.aliasView(),
      now,
      formerRoots: this.deps.aliases.formerRoots(),
      rows,
      activations: activator.activations(),
      busy: rows.filter((d) => activator.isBusy(d.hash)).map((d) => d.hash),
    };
    const decided = plan(this.memory, input);
    this.verdicts = decided.planned.verdicts;
    if (decided.knownMembers) {
      store.setKnownMembers(decided.knownMembers);
      this.memory.membersSaved(decided.knownMembers);
    }
    for (const e of decided.events) store.event(e.hash, e.kind, e.message);
    for (const action of decided.actions) {
      // an activation or stop may have begun while an earlier action was carried out
      if (activator.isBusy(action.hash)) continue;
      try {
        await this.apply(action, now);
      } catch (e) {
        log(`retirement ${action.kind} ${action.hash}: ${(e as Error).message}`);
      }
    }
    return decided.planned;
  }

  /** The policy, the roots it makes of the alias table and the cluster view, as they are now. */
  private aliasView(): Pick<PlanInput, "policy" | "roots" | "members"> {
    const { aliases, policy } = this.deps;
    return { policy, roots: aliases.roots(policy), members: this.deps.members() };
  }

  private async apply(action: Action, now: number): Promise<void> {
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
      await activator.whileStopping(d.hash, () => this.retire(d, effect.reason, now));
      return;
    }
    this.changed(store.transition(d.hash, d.generation, effect.to, effect.reason, null, effect.from));
  }

  /** Stops a draining hash's units and drops its GC root, unless `beforeStop` says otherwise. */
  private async retire(d: Deployment, reason: string, now: number): Promise<void> {
    const { store, nix, activator } = this.deps;
    const go = beforeStop(d.hash, d.generation, {
      ...this.aliasView(),
      now,
      row: store.get(d.hash),
      rows: store.list(),
    });
    if (!go.stop) {
      if (go.event) store.event(go.event.hash, go.event.kind, go.event.message);
      return;
    }
    // The socket goes first so that nothing new is queued; the service then gets its drain time.
    await activator.stopUnits(d);
    await nix.removeGcRoot(d.hash);
    this.changed(store.transition(d.hash, d.generation, "retired", reason, null, "draining"));
    this.deps.log(`retired ${d.hash} (${d.name}): ${reason}`);
  }

  /** Activates again a hash retired here that is wanted again, if its closure is still here. */
  private async revive(d: Deployment, reason: string): Promise<void> {
    const { nix, activator, store, log } = this.deps;
    if (!(await nix.isValid(d.path))) {
      this.memory.closureGone(d.hash); // `plan` leaves it out until it is unwanted again
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

  private changed(d: Deployment | undefined): void {
    if (d) this.deps.onChange(d);
  }
}
