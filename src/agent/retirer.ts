import type { Nix } from "../nix/nix.ts";
import type { Systemctl } from "../systemd/systemctl.ts";
import type { Activator } from "./activator.ts";
import type { AliasService, RetentionPolicy } from "./aliases/alias-service.ts";
import { effectOf, needsServiceState } from "./retirement/effects.ts";
import type { Action, MemberView, PlannerResult, RetirementPlanner } from "./retirement/planner.ts";
import { type Deployment, LIVE_STATES } from "./state/deployment.ts";
import type { StateStore } from "./state/store.ts";

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
 */
export class Retirer {
  private lastVerdicts = new Map<string, string>();
  verdicts: PlannerResult["verdicts"] = new Map();
  /** the planner's known members as last saved */
  private savedMembers: string;

  constructor(private readonly deps: RetirerDeps) {
    // A restarted agent's gossip view starts empty: the planner's majority must not.
    deps.planner.remember(deps.store.knownMembers());
    this.savedMembers = deps.planner.knownMembers().join(" ");
  }

  async tick(now: number): Promise<PlannerResult> {
    const { store, planner, aliases, policy } = this.deps;
    const live = store.list().filter((d) => LIVE_STATES.has(d.state));
    const result = planner.step({
      now,
      members: this.deps.members(),
      roots: aliases.roots(policy),
      local: live.map((d) => ({
        hash: d.hash,
        state: d.state,
        keepForever: policy.kind === "keep",
        everWanted: d.everWanted,
      })),
    });
    this.verdicts = result.verdicts;
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
    const { store, systemctl, nix, activator } = this.deps;
    const d = store.get(action.hash);
    if (!d || !LIVE_STATES.has(d.state)) return;
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
    if (effect.stop === "service") await systemctl.stop([units.service]);
    if (effect.stop === "units-and-gc-root") {
      // The socket goes first so that nothing new is queued; the service then gets its drain time.
      await activator.stopUnits(d);
      await nix.removeGcRoot(d.hash);
    }
    this.changed(store.transition(d.hash, d.generation, effect.to, effect.reason, null, effect.from));
    if (effect.to === "retired") this.deps.log(`retired ${d.hash} (${d.name}): ${effect.reason}`);
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
      const key = v.reason.replace(/\d+ ms/g, "");
      if (this.lastVerdicts.get(hash) === key) continue;
      this.lastVerdicts.set(hash, key);
      if (!v.wanted) this.deps.store.event(hash, "kept", v.reason);
    }
    for (const hash of this.lastVerdicts.keys()) if (!verdicts.has(hash)) this.lastVerdicts.delete(hash);
  }

  private changed(d: Deployment | undefined): void {
    if (d) this.deps.onChange(d);
  }
}
