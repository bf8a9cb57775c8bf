import type { Manifest } from "./manifest.ts";

/** In this order: the index is the state's code in gossip reports (agent/gossip/wire/codec-fields.ts). */
export const DEPLOYMENT_STATES = [
  "fetching",
  "activating",
  "ready",
  "idle",
  "draining",
  "retired",
  "failed",
] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/** States in which the hash's units exist and its URL answers. */
export const LIVE_STATES: ReadonlySet<DeploymentState> = new Set(["activating", "ready", "idle", "draining"]);

export interface Deployment {
  hash: string;
  path: string;
  name: string;
  state: DeploymentState;
  manifest: Manifest;
  /** why the last activation failed (with the unit's last journal lines) */
  error: string | null;
  /** bumped on every (re)activation; lets late readiness results of an older attempt be ignored */
  generation: number;
  createdAt: number;
  updatedAt: number;
  readyAt: number | null;
  /** service hashes this closure references (Nix runtime references between service closures) */
  refs: string[];
  /**
   * an alias, pin or wanted dependent reached it since its last activation by hand: only then
   * can it retire
   */
  everWanted: boolean;
  /** activated again by hand after it was wanted: kept until wanted again (retirement/planner.ts) */
  reactivated: boolean;
  /** retired by `hashd deactivate`: the retirer never activates it again */
  retiredByHand: boolean;
  /** when the current deployment began (its last activation; createdAt is the first) */
  activatedAt: number;
}

export interface DeploymentEvent {
  id: number;
  at: number;
  hash: string;
  kind: string;
  message: string;
}
