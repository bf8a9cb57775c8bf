/** The gossip layer's public surface (the simulator is imported directly by tests and benches). */

export { type Rng, SystemRng, Xoshiro128 } from "../../lib/prng.ts";
export type { Hlc } from "../../model/hlc.ts";
export { DEFAULT_CONFIG, type GossipConfig } from "./config.ts";
export { GossipNode, type RunningHash } from "./core.ts";
export {
  type AdapterStats,
  MAX_DATAGRAM_BYTES,
  UdpGossipAdapter,
  type UdpGossipAdapterOptions,
} from "./net/udp-adapter.ts";
export type * from "./types.ts";
export { Keyring, KeyringError, type KeyringStats } from "./wire/crypto.ts";
