/**
 * A Runtime for unit tests of the core: it records everything the core emits (packets decoded,
 * timers, streams, events) and the test plays the network and the clock. Not used by the agent.
 */

import type { GossipConfig } from "../../../src/agent/gossip/config.ts";
import { GossipNode } from "../../../src/agent/gossip/core.ts";
import type { Address, GossipEvent, Runtime, Timer } from "../../../src/agent/gossip/types.ts";
import { assemblePacket, decodePacket, encodeMessage } from "../../../src/agent/gossip/wire/codec.ts";
import { type PacketMessage, T } from "../../../src/agent/gossip/wire/messages.ts";
import { Xoshiro128 } from "../../../src/lib/prng.ts";

export class FakeRuntime implements Runtime {
  sent: { to: Address; messages: PacketMessage[] }[] = [];
  timers: { afterMs: number; timer: Timer }[] = [];
  streams: { to: Address; request: Uint8Array; token: number }[] = [];
  events: GossipEvent[] = [];
  send(to: Address, packet: Uint8Array): void {
    const d = decodePacket(packet, 1400);
    if (!d.ok) throw new Error(`core sent an undecodable packet: ${d.error}`);
    if (packet.length > 1350) throw new Error(`core sent a packet of ${packet.length} bytes (> 1350)`);
    this.sent.push({ to, messages: d.value });
  }
  schedule(afterMs: number, timer: Timer): void {
    this.timers.push({ afterMs, timer });
  }
  openStream(to: Address, request: Uint8Array, token: number): void {
    this.streams.push({ to, request, token });
  }
  notify(event: GossipEvent): void {
    this.events.push(event);
  }
  lastTimer<K extends Timer["kind"]>(kind: K): Extract<Timer, { kind: K }> {
    const t = this.timers.filter((x) => x.timer.kind === kind).at(-1);
    if (t === undefined) throw new Error(`no ${kind} timer`);
    return t.timer as Extract<Timer, { kind: K }>;
  }
  clear(): void {
    this.sent = [];
    this.events = [];
  }
}

export const T0 = 1_700_000_000_000;
export const addr = (i: number): Address => `10.0.0.${i}:7946`;
export const packet = (...m: PacketMessage[]): Uint8Array => assemblePacket(m.map(encodeMessage));

/** A node "me" at addr(0) that knows n1..n<others> alive (incarnation 10), with its runtime. */
export const fakeRuntimeNode = (others = 3, config: Partial<GossipConfig> = {}) => {
  const rt = new FakeRuntime();
  const node = new GossipNode(config, { name: "me", address: addr(0), boot: T0 }, new Xoshiro128(1), T0, rt);
  for (let i = 1; i <= others; i++) {
    node.handlePacket(addr(i), packet({ t: T.alive, name: `n${i}`, addr: addr(i), inc: 10, boot: 10 }), T0);
  }
  rt.clear();
  return { rt, node };
};
