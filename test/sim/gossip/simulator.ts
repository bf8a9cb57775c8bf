/**
 * Deterministic simulator: N GossipNodes on a virtual clock and a virtual network, driven from
 * one seed (the quinn-proto test harness idea). Packets can be lost, delayed by a random amount
 * (so they reorder), and cut by partitions; members can crash (stop processing) and restart (a
 * new GossipNode with the same name and address, fresh state and a later boot id, which rejoins).
 * Streams are reliable like TCP but fail across partitions and to crashed members.
 *
 * Same seed, same run: every random choice comes from xoshiro128** streams forked from the seed,
 * and events due at the same time run in scheduling order.
 */

import type { GossipConfig } from "../../../src/agent/gossip/config.ts";
import { GossipNode } from "../../../src/agent/gossip/core.ts";
import type { Address, GossipEvent, Timer } from "../../../src/agent/gossip/types.ts";
import { SEAL_OVERHEAD } from "../../../src/agent/gossip/wire/crypto.ts";
import { randomBetween, randomFloat, randomInt, Xoshiro128 } from "../../../src/lib/prng.ts";
import type { MemberAppState } from "../../../src/model/reports.ts";
import { EventHeap } from "./event-heap.ts";

export interface SimOptions {
  seed: number;
  config?: Partial<GossipConfig>;
  /** Probability that a packet is lost. */
  loss?: number;
  /** One-way delay range in ms, uniform. */
  delay?: [number, number];
  /** Simulated epoch ms at start (the core's `now` is the wall clock). */
  startTime?: number;
}

export interface SimMember {
  readonly index: number;
  readonly name: string;
  readonly address: Address;
  node: GossipNode;
  /** Instance generation: bumped on restart, so the old instance's timers and streams are void. */
  gen: number;
  crashed: boolean;
  boot: number;
  /** Sealed bytes sent (UDP payload + sealing overhead, streams both ways counted at the sender). */
  udpBytesSent: number;
  streamBytesSent: number;
}

type SimEvent =
  | { at: number; seq: number; kind: "timer"; to: number; gen: number; timer: Timer }
  | { at: number; seq: number; kind: "packet"; to: number; from: Address; bytes: Uint8Array }
  | {
      at: number;
      seq: number;
      kind: "stream-req";
      to: number;
      from: number;
      gen: number;
      token: number;
      bytes: Uint8Array;
    }
  | {
      at: number;
      seq: number;
      kind: "stream-res";
      to: number;
      gen: number;
      token: number;
      bytes: Uint8Array | null;
      /** a failed connect answered with a reset: the host is up, its agent is not (crashed) */
      refused?: boolean;
    };

type Unscheduled = SimEvent extends infer E ? (E extends SimEvent ? Omit<E, "at" | "seq"> : never) : never;

export type SimListener = (observer: SimMember, event: GossipEvent, now: number) => void;

export class Simulation {
  readonly seed: number;
  now: number;
  readonly members: SimMember[] = [];
  loss: number;
  delay: [number, number];
  /** Called for every event any member emits. */
  listener: SimListener | null = null;
  /** Sees every packet sent (before loss), e.g. to capture one for a replay. */
  packetTap: ((from: SimMember, to: Address, packet: Uint8Array) => void) | null = null;
  eventsProcessed = 0;
  private readonly config: Partial<GossipConfig>;
  private readonly rng: Xoshiro128;
  private readonly net: Xoshiro128;
  private readonly heap = new EventHeap<SimEvent>();
  private readonly byAddr = new Map<Address, number>();
  private seqNo = 0;
  /** Partition group per member index; members in different groups cannot talk. */
  private group: Int32Array | null = null;

  constructor(options: SimOptions) {
    this.seed = options.seed >>> 0;
    this.rng = new Xoshiro128(this.seed);
    this.net = this.rng.fork();
    this.now = options.startTime ?? 1_700_000_000_000;
    this.loss = options.loss ?? 0;
    this.delay = options.delay ?? [1, 5];
    this.config = options.config ?? {};
  }

  /**
   * Add and start a member with `state` (set before joining, as the agent does: it knows what it
   * runs when it starts); it joins through `seeds` (addresses) if any are given.
   */
  add(seeds: readonly Address[] = [], name?: string, state?: MemberAppState): SimMember {
    const index = this.members.length;
    const memberName = name ?? `node-${index}`;
    const address = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}:7946`;
    this.byAddr.set(address, index);
    const sm = { index, name: memberName, address, gen: 0, crashed: false, boot: this.now } as SimMember;
    sm.udpBytesSent = 0;
    sm.streamBytesSent = 0;
    this.members.push(sm);
    sm.node = this.instantiate(sm);
    if (state !== undefined) sm.node.setLocalState(state, this.now);
    if (seeds.length > 0) sm.node.join(seeds, this.now);
    return sm;
  }

  /** A random live member's address other than `except` (a seed for a new member). */
  randomLiveAddress(except?: number): Address | null {
    const live = this.members.filter((m) => !m.crashed && m.index !== except);
    return live.length === 0 ? null : (live[randomInt(this.rng, live.length)] as SimMember).address;
  }

  crash(index: number): void {
    (this.members[index] as SimMember).crashed = true;
  }

  /**
   * Restart a crashed (or running) member: fresh state, a later boot id (or `boot`, to model a
   * clock that stepped back), rejoin through `seeds`.
   */
  restart(index: number, seeds: readonly Address[], boot?: number): void {
    const sm = this.members[index] as SimMember;
    sm.gen++;
    sm.crashed = false;
    sm.boot = boot ?? Math.max(this.now, sm.boot + 1);
    sm.node = this.instantiate(sm);
    sm.node.join(seeds, this.now);
  }

  /** Split the members into groups that cannot reach each other; members not listed form one more group. */
  partition(groups: readonly (readonly number[])[]): void {
    const g = new Int32Array(this.members.length).fill(-1);
    groups.forEach((members, i) => {
      for (const m of members) g[m] = i;
    });
    this.group = g;
  }

  heal(): void {
    this.group = null;
  }

  canReach(a: number, b: number): boolean {
    if (this.group === null) return true;
    return (this.group[a] ?? -1) === (this.group[b] ?? -1);
  }

  /** Deliver a packet as if `from` had sent it (a replay by someone holding the key). */
  inject(to: number, from: Address, packet: Uint8Array, afterMs = 1): void {
    this.push({ kind: "packet", to, from, bytes: packet }, afterMs);
  }

  setLocalState(index: number, state: MemberAppState): void {
    (this.members[index] as SimMember).node.setLocalState(state, this.now);
  }

  /** Process events up to `until` (absolute simulated time). */
  runUntilTime(until: number): void {
    const heap = this.heap;
    while (heap.peekTime() <= until) {
      const e = heap.pop() as SimEvent;
      this.now = e.at;
      this.eventsProcessed++;
      this.deliver(e);
    }
    this.now = until;
  }

  run(ms: number): void {
    this.runUntilTime(this.now + ms);
  }

  /**
   * Run until `done()` holds, checking every `stepMs`; returns the simulated ms it took, or -1 if
   * `maxMs` passed first.
   */
  runUntil(done: () => boolean, maxMs: number, stepMs = 250): number {
    const start = this.now;
    while (this.now - start < maxMs) {
      if (done()) return this.now - start;
      this.run(stepMs);
    }
    return done() ? this.now - start : -1;
  }

  /** Run `fn`; if it throws (a failed expectation), rethrow with the seed that replays the run. */
  check(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      const message = `simulation seed ${this.seed} (replay: new Simulation({ seed: ${this.seed}, ... })): ${(e as Error).message}`;
      console.error(message);
      throw new Error(message, { cause: e });
    }
  }

  live(): SimMember[] {
    return this.members.filter((m) => !m.crashed);
  }

  private instantiate(sm: SimMember): GossipNode {
    const gen = sm.gen;
    const rng = this.rng.fork();
    const runtime = {
      send: (to: Address, packet: Uint8Array) => this.sendPacket(sm, gen, to, packet),
      schedule: (afterMs: number, timer: Timer) =>
        this.push({ kind: "timer", to: sm.index, gen, timer }, afterMs),
      openStream: (to: Address, request: Uint8Array, token: number) =>
        this.openStream(sm, gen, to, request, token),
      notify: (event: GossipEvent) => {
        if (this.listener !== null && sm.gen === gen) this.listener(sm, event, this.now);
      },
    };
    return new GossipNode(
      this.config,
      { name: sm.name, address: sm.address, boot: sm.boot },
      rng,
      this.now,
      runtime,
    );
  }

  private push(e: Unscheduled, afterMs: number): void {
    const ev = e as SimEvent;
    ev.at = this.now + afterMs;
    ev.seq = this.seqNo++;
    this.heap.push(ev);
  }

  private oneWayDelay(): number {
    return randomBetween(this.net, this.delay[0], this.delay[1]);
  }

  /**
   * One TCP leg of `segments` one-way trips: each lost segment is resent after a retransmission
   * timeout (1 s initially, doubling: Linux's RTO floor for a new connection), so streams are
   * reliable but slow under loss, as they are.
   */
  private streamDelay(segments: number): number {
    let d = 0;
    for (let i = 0; i < segments; i++) {
      d += this.oneWayDelay();
      let rto = 1000;
      while (this.loss > 0 && randomFloat(this.net) < this.loss) {
        d += rto;
        rto *= 2;
      }
    }
    return d;
  }

  private sendPacket(from: SimMember, gen: number, to: Address, packet: Uint8Array): void {
    if (from.crashed || from.gen !== gen) return;
    from.udpBytesSent += packet.length + SEAL_OVERHEAD;
    this.packetTap?.(from, to, packet);
    const target = this.byAddr.get(to);
    if (target === undefined || !this.canReach(from.index, target)) return;
    if (this.loss > 0 && randomFloat(this.net) < this.loss) return;
    this.push({ kind: "packet", to: target, from: from.address, bytes: packet }, this.oneWayDelay());
  }

  private openStream(from: SimMember, gen: number, to: Address, request: Uint8Array, token: number): void {
    if (from.crashed || from.gen !== gen) return;
    from.streamBytesSent += request.length + SEAL_OVERHEAD + 4;
    const target = this.byAddr.get(to);
    if (target === undefined) {
      this.push({ kind: "stream-res", to: from.index, gen, token, bytes: null }, this.oneWayDelay());
      return;
    }
    // connect (SYN, SYN-ACK), then the request
    this.push(
      { kind: "stream-req", to: target, from: from.index, gen, token, bytes: request },
      this.streamDelay(3),
    );
  }

  private deliver(e: SimEvent): void {
    const sm = this.members[e.to] as SimMember;
    switch (e.kind) {
      case "timer":
        if (!sm.crashed && sm.gen === e.gen) sm.node.handleTimer(e.timer, this.now);
        return;
      case "packet":
        if (!sm.crashed) sm.node.handlePacket(e.from, e.bytes, this.now);
        return;
      case "stream-req": {
        const requester = this.members[e.from] as SimMember;
        let reply: Uint8Array | null = null;
        const reachable = this.canReach(e.from, e.to);
        if (!sm.crashed && reachable) reply = sm.node.handleStreamRequest(e.bytes, this.now);
        if (reply !== null) sm.streamBytesSent += reply.length + SEAL_OVERHEAD + 4;
        // The reply (or, for a failed connection, the reset) takes one more trip. A crashed
        // member's host is up and refuses the connection, as a real one with its agent killed.
        const refused = sm.crashed && reachable;
        this.push(
          { kind: "stream-res", to: requester.index, gen: e.gen, token: e.token, bytes: reply, refused },
          this.streamDelay(1),
        );
        return;
      }
      case "stream-res":
        if (sm.crashed || sm.gen !== e.gen) return;
        if (e.bytes === null) sm.node.handleStreamFailure(e.token, this.now, e.refused === true);
        else sm.node.handleStreamResponse(e.token, e.bytes, this.now);
        return;
    }
  }
}
