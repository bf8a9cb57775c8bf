/**
 * What a member reports about each hash it runs: gossiped to every peer (agent/gossip), read by
 * the retirement planner, the route table and the status page.
 */
import type { DeploymentState } from "./deployment.ts";

export interface HashReport {
  hash: string;
  state: DeploymentState;
  inFlight: number;
  holds: number;
  /** Service hashes this one references (its dependencies). */
  refs: string[];
}

/** What one member owns and gossips about itself. */
export interface MemberAppState {
  hashes: HashReport[];
  /** "ip:port" of its HTTP ingress. */
  ingress?: string;
}
