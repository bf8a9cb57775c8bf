/**
 * What carrying out one planner action does to one deployment, as data: the pure half of the
 * retirer. The agent's Retirer performs it on systemd, Nix and SQLite; the retirement simulator
 * applies it to its model of an agent. Both go through `effectOf`, so they cannot disagree.
 */

import { type DeploymentState, LIVE_STATES } from "../../model/deployment.ts";
import type { Action } from "./planner.ts";

/** What the retirer stops before it records the new state. */
export type Stop =
  /** nothing: a state change only */
  | "nothing"
  /** the service; its socket stays (so the next connection starts it again) */
  | "service"
  /** the socket, then the service (with its drain time), then the GC root */
  | "units-and-gc-root";

export type Effect =
  /** set everWanted (once: the database ignores a second time) */
  | { kind: "mark-wanted"; reason: string }
  /**
   * move to `to`, only if the deployment is still in `from` at the generation the action was
   * planned on (a late change of an older attempt never wins); stop `stop` first
   */
  | { kind: "transition"; to: DeploymentState; from: DeploymentState; reason: string; stop: Stop }
  /**
   * activate it again as the agent (not by hand: it keeps its wanted marks), if its closure is
   * still in the local store (its GC root went with the retirement)
   */
  | { kind: "activate"; reason: string };

/** The facts about a deployment an action depends on. */
export interface DeploymentFacts {
  state: DeploymentState;
}

/**
 * The effect of `action` on a deployment (undefined: not known here), or null when there is
 * nothing to do because it is no longer live (for "revive": because it is no longer retired).
 * `serviceActive` is read only for "undrain": it decides between ready and idle (the caller asks
 * systemd only for that action).
 */
export function effectOf(
  d: DeploymentFacts | undefined,
  action: Action,
  serviceActive: boolean,
): Effect | null {
  if (action.kind === "revive")
    return d?.state === "retired" ? { kind: "activate", reason: action.reason } : null;
  if (!d || !LIVE_STATES.has(d.state)) return null;
  switch (action.kind) {
    case "wanted":
      return { kind: "mark-wanted", reason: `wanted: ${action.reason}` };
    case "drain":
      return { kind: "transition", to: "draining", from: d.state, reason: action.reason, stop: "nothing" };
    case "undrain":
      return {
        kind: "transition",
        to: serviceActive ? "ready" : "idle",
        from: "draining",
        reason: action.reason,
        stop: "nothing",
      };
    case "scale-to-zero":
      return { kind: "transition", to: "idle", from: d.state, reason: action.reason, stop: "service" };
    case "retire":
      return {
        kind: "transition",
        to: "retired",
        from: "draining",
        reason: action.reason,
        stop: "units-and-gc-root",
      };
  }
}

/** Whether carrying out `action` needs to know if the hash's service runs (see effectOf). */
export const needsServiceState = (action: Action): boolean => action.kind === "undrain";
