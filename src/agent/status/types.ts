/**
 * The status page's data contract. The page, the SSE stream and /api read only this shape, so they
 * do not care whether it was built from this agent's store and gossip or from a test fixture.
 */
import type { AliasTarget } from "../../model/alias-record.ts";
import type { DeploymentState } from "../../model/deployment.ts";
import type { RolloutState } from "../../model/rollout-state.ts";

export type { AliasTarget, DeploymentState, RolloutState };

export type MemberHealth = "alive" | "suspect" | "dead" | "left";

export interface StatusMember {
  name: string;
  /** "ip:port" of its gossip endpoint ("" when unknown, e.g. a single host without gossip) */
  address: string;
  state: MemberHealth;
  incarnation: number;
  /** epoch ms of the last authenticated packet from it; 0 = never */
  lastContact: number;
  /** true for the host that serves this page */
  self: boolean;
}

/** One member's view of one hash. */
export interface StatusHost {
  member: string;
  state: DeploymentState;
  inFlight: number;
  holds: number;
  /**
   * The member is dead or left: this is its last known report, kept so its hashes stay in view.
   * Its numbers do not count in the hash's sums.
   */
  stale?: boolean;
}

export type ReadinessType = "notify" | "http" | "accept";

export interface StatusHash {
  hash: string;
  /** the manifest's service name; null when the hash is known only from other members' reports */
  name: string | null;
  /** this host's state; null when this host does not have the hash */
  state: DeploymentState | null;
  url: string;
  /** how readiness is judged (from the manifest); null when the manifest is not on this host */
  readiness: ReadinessType | null;
  /** the HTTP readiness path, for readiness "http" */
  readinessPath?: string;
  /** sums over `hosts`: what retirement waits for, cluster-wide */
  inFlight: number;
  holds: number;
  /** every member that reports the hash, this host first */
  hosts: StatusHost[];
  /** service hashes this one calls (its Nix references among service closures) */
  refs: string[];
  /**
   * why it still runs or drains: this host's retirement planner's verdict, else the short reason
   * the first member that reports it gave (gossip's `why`)
   */
  verdict?: string;
  /** why its last activation on this host failed */
  error?: string;
  /** epoch ms of this host's last change of the hash; 0 when not on this host */
  updatedAt: number;
  /** epoch ms of this host's last activation of the hash (its deploy time here); absent when not here */
  deployedAt?: number;
}

export interface StatusAliasChange {
  /** null = the alias was removed */
  hash: string | null;
  /** epoch ms */
  at: number;
  /** member that made the write */
  by: string;
}

export interface StatusAlias {
  name: string;
  /** null = removed (a tombstone) */
  hash: string | null;
  /** newest first, the current value included */
  history: StatusAliasChange[];
  /** a weighted alias: each hash and its share of requests in percent (they sum to 100) */
  split?: AliasTarget[];
  /** the staged rollout (or guard) that drives this alias: steps, current step, status, note */
  rollout?: RolloutState;
}

export interface StatusEvent {
  at: number;
  hash: string;
  kind: string;
  message: string;
}

export interface StatusSnapshot {
  self: string;
  zone: string;
  /** epoch ms */
  generatedAt: number;
  members: StatusMember[];
  hashes: StatusHash[];
  aliases: StatusAlias[];
  /** newest first */
  events: StatusEvent[];
}

/** Where the page gets its data; implemented over the agent's state (source.ts) or by a test. */
export interface StatusSource {
  snapshot(): StatusSnapshot;
  /** Calls `onChange` (at most every poll interval) after the snapshot changed; returns unsubscribe. */
  subscribe(onChange: () => void): () => void;
  /** The recent events of one hash (newest first), beyond the snapshot's window. Optional. */
  events?(hash: string, limit: number): StatusEvent[];
}
