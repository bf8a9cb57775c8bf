/**
 * The gossip layer's surface: the rest of the agent imports from here only
 * (test/architecture.test.ts checks it). Tests, the simulator and the benches reach inside.
 */
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
