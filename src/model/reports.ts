/**
 * What a member reports about each hash it runs: gossiped to every peer (agent/gossip), read by
 * the retirement planner, the route table, the rollout driver and the status page.
 */
import type { DeploymentState } from "./deployment.ts";
import type { RequestCounts } from "./request-stats.ts";

export interface HashReport {
  hash: string;
  state: DeploymentState;
  inFlight: number;
  holds: number;
  /** Service hashes this one references (its dependencies). */
  refs: string[];
  /** The service's name (manifest name), so every member's status page names every hash. */
  service?: string;
  /** Why the hash is in its state, short: the retirer's verdict, a failure's first line. */
  why?: string;
  /**
   * Requests this member's ingress answered for the hash since `counts.since` (cumulative, like a
   * Prometheus counter: readers take differences, request-stats.ts).
   */
  counts?: RequestCounts;
  /**
   * Wall-clock ms until which clients pinned to this hash by a sticky cookie may come back
   * (their last request here + the cookie's max age): the hash is wanted until then.
   */
  stickyUntil?: number;
}

/** What one member owns and gossips about itself. */
export interface MemberAppState {
  hashes: HashReport[];
  /** "ip:port" of its HTTP ingress. */
  ingress?: string;
}
