/**
 * Test and benchmark fixtures: valid store hashes and app states of a chosen size. Not used by
 * the agent.
 */

import type { MemberInfo } from "../../../src/agent/gossip/types.ts";
import type { DeploymentState } from "../../../src/model/deployment.ts";
import type { HashReport, MemberAppState } from "../../../src/model/reports.ts";
import type { RolloutState } from "../../../src/model/rollout-state.ts";

const NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";

/** A deterministic valid store hash (nix-base32, 32 characters) for `n`. */
export const fakeHash = (n: number): string => {
  let x = (n * 2654435761) >>> 0;
  let out = "";
  for (let i = 0; i < 32; i++) {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i + n) >>> 0;
    out += NIX32[x & 31];
  }
  return out;
};

/** A state with `count` hashes, each referencing `refs` others; `salt` varies the counters. */
export const fakeState = (
  first: number,
  count: number,
  options: { refs?: number; salt?: number; state?: DeploymentState; ingress?: string; extras?: boolean } = {},
): MemberAppState => {
  const hashes: HashReport[] = [];
  for (let i = 0; i < count; i++) {
    const refs = Array.from({ length: options.refs ?? 0 }, (_, r) => fakeHash(1_000_000 + first + i + r));
    hashes.push({
      hash: fakeHash(first + i),
      state: options.state ?? "ready",
      inFlight: (options.salt ?? 0) + i,
      holds: 0,
      refs,
      ...(options.extras ? reportExtras(first + i) : {}),
    });
  }
  return options.ingress === undefined ? { hashes } : { hashes, ingress: options.ingress };
};

/** One member as the core's events and members() show it; its boot is its incarnation. */
export const fakeMemberInfo = (
  name: string,
  state: MemberInfo["state"],
  address = `${name}:7946`,
  incarnation = 1,
): MemberInfo => ({
  name,
  address,
  state,
  incarnation,
  boot: incarnation,
  lastContact: 0,
  stateChangedAt: 0,
  stateVersion: null,
});

/** The optional tail of a hash report: a name, a reason, request counts, sticky use. */
export const reportExtras = (i: number): Partial<HashReport> => {
  const buckets = new Array(40).fill(0);
  buckets[10] = 90 + i;
  buckets[20] = 3;
  buckets[39] = 1;
  return {
    service: `svc-${i}`,
    why: `alias prod (${i % 100}%)`,
    counts: { since: 1_700_000_000_000, requests: 94 + i, errors: 2, failures: 1, buckets },
    stickyUntil: 1_700_000_600_000,
  };
};

/** A rollout at its second step, as an alias write carries it. */
export const fakeRollout = (from: string, to: string): RolloutState => ({
  kind: "rollout",
  from,
  to,
  steps: [5, 25, 50, 100],
  step: 1,
  stepSince: 1_700_000_060_000,
  stepTimeMs: 60_000,
  intervalMs: 5_000,
  limits: { maxErrorRate: 0.01, maxP99Ratio: 1.5, minRequests: 200 },
  status: "running",
  note: "step 2 (25%) after step 1 passed: error rate 0.1% over 1,204 requests",
  startedAt: 1_700_000_000_000,
});
