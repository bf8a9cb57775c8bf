import type { Deployment } from "../../model/deployment.ts";

/**
 * What a change of this host's state sets off, for phases that start after the state is open.
 * The activator, the retirer, the unit watch and the idle stop call `deploymentChanged` with a
 * deployment's new row; holds and activations under way call `reportChanged` (the report peers
 * get changed, no row did). start-serving follows deployments (route table, idle scaler), then
 * start-loops follows the report (a publication soon). A change before a phase follows (reconcile,
 * at start) reaches only those that already do: each phase reads store.list() when it starts.
 */
export class LocalChanges {
  private readonly deploymentFollowers: ((d: Deployment) => void)[] = [];
  private readonly reportFollowers: (() => void)[] = [];

  /** A deployment's row changed: its followers in the order they came, then the report's. */
  readonly deploymentChanged = (d: Deployment): void => {
    for (const f of this.deploymentFollowers) f(d);
    this.reportChanged();
  };

  readonly reportChanged = (): void => {
    for (const f of this.reportFollowers) f();
  };

  onDeployment(follower: (d: Deployment) => void): void {
    this.deploymentFollowers.push(follower);
  }

  onReport(follower: () => void): void {
    this.reportFollowers.push(follower);
  }
}
