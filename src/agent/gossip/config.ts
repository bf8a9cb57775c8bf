/**
 * Configuration, with memberlist's DefaultLANConfig values (memberlist config.go) unless a line
 * says why it differs.
 */
export interface GossipConfig {
  probeIntervalMs: number;
  probeTimeoutMs: number;
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  indirectChecks: number;
  /** Also ping over a stream when the direct ping times out (memberlist: !DisableTcpPings). */
  tcpFallbackPing: boolean;
  retransmitMult: number;
  gossipIntervalMs: number;
  gossipNodes: number;
  /**
   * Not memberlist's: news (a broadcast queued, ours or relayed) goes out in an extra gossip round
   * this long after it is queued, instead of waiting up to a whole gossip interval; 0 disables.
   * The retransmit limit still bounds how often each broadcast is sent, so this moves sends earlier
   * without adding any; at rest nothing is queued and nothing changes.
   */
  eagerGossipMs: number;
  /** Extra rounds come no sooner than this after the previous round of either kind. */
  eagerGossipGapMs: number;
  pushPullIntervalMs: number;
  awarenessMaxMultiplier: number;
  /** After a join, push-pull again with a random member about 1x and 5x this long later (0: never). */
  joinResyncMs: number;
  /** While no other member is alive or suspect, join the seeds again this often (cluster.ts did, every 2 s). */
  joinRetryMs: number;
  /**
   * Serf's reconnect_interval: this often, join a random failed member (with Serf's odds) and a
   * random seed that is not an alive member. A failed member is tried until its tombstone expires
   * (`tombstoneMs`, Serf's reconnect_timeout).
   */
  reconnectIntervalMs: number;
  /** Dead members still get gossip this long (so a falsely dead one learns it and refutes), then are reaped. */
  gossipToTheDeadMs: number;
  /** Plaintext packet bound: 1400 on the wire minus sealing (1 + 12 + 16 bytes) and some room. */
  maxPacketBytes: number;
  /**
   * Largest plaintext stream message (push-pull of the whole cluster's state). Not memberlist's
   * (it has none): a push-pull reply with the full state of 1,000 members of 1,000 hashes each
   * encodes to 41.5 MiB (bench/gossip/push-pull-size.ts: 25-character names, millisecond boot
   * ids, 1,000 aliases with full history, no refs), so 64 MiB leaves half as much again. A
   * larger push-pull goes without its states, which are then fetched (push-pull.ts).
   */
  maxStreamBytes: number;
  /** A state whose STATE message encodes larger than this is announced by version and fetched. */
  maxInlineStateBytes: number;
  /** Local state updates are published at most this often (later ones coalesce). */
  stateMinIntervalMs: number;
  /** A stream with no answer after this long counts as failed. */
  streamTimeoutMs: number;
  /** Concurrent state fetches; beyond it, later announcements or push-pull repair. */
  maxConcurrentFetches: number;
  /** Reaped members are remembered this long so a replayed alive cannot resurrect them. */
  tombstoneMs: number;
  maxTombstones: number;
  /** Broadcast queue bound (Serf's MaxQueueDepth); the bound is at least 2n. */
  maxQueueDepth: number;
  /** Alias writes whose clock is this far ahead of ours are refused. */
  hlcMaxDriftMs: number;
}

export const DEFAULT_CONFIG: Readonly<GossipConfig> = Object.freeze({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  indirectChecks: 3,
  tcpFallbackPing: true,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  eagerGossipMs: 5,
  eagerGossipGapMs: 50,
  pushPullIntervalMs: 30_000,
  awarenessMaxMultiplier: 8,
  gossipToTheDeadMs: 30_000,
  joinResyncMs: 3000,
  joinRetryMs: 2000,
  reconnectIntervalMs: 30_000,
  maxPacketBytes: 1350,
  maxStreamBytes: 64 * 1024 * 1024,
  maxInlineStateBytes: 512,
  stateMinIntervalMs: 500,
  streamTimeoutMs: 10_000,
  maxConcurrentFetches: 8,
  tombstoneMs: 3_600_000,
  maxTombstones: 10_000,
  maxQueueDepth: 4096,
  hlcMaxDriftMs: 60_000,
});

export const resolveConfig = (partial: Partial<GossipConfig> = {}): GossipConfig => {
  const config = { ...DEFAULT_CONFIG, ...partial };
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === "boolean") continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new RangeError(`gossip config ${key} must be a non-negative number, got ${String(value)}`);
    }
  }
  if (config.maxPacketBytes < 256) throw new RangeError("gossip config maxPacketBytes must be >= 256");
  if (config.probeTimeoutMs > config.probeIntervalMs) {
    throw new RangeError("gossip config probeTimeoutMs must not exceed probeIntervalMs");
  }
  return config;
};
