/** The gossip layer's public surface (the simulator is imported directly by tests and benches). */
export { DEFAULT_CONFIG, type GossipConfig } from "./config.ts";
export { GossipNode, type RunningHash } from "./core.ts";
export { Keyring, KeyringError, type KeyringStats } from "./crypto.ts";
export type { Hlc } from "./hlc.ts";
export { type Rng, SystemRng, Xoshiro128 } from "./prng.ts";
export type * from "./types.ts";
export { DEPLOYMENT_STATES } from "./types.ts";
export {
  type AdapterStats,
  MAX_DATAGRAM_BYTES,
  UdpGossipAdapter,
  type UdpGossipAdapterOptions,
} from "./udp-adapter.ts";
