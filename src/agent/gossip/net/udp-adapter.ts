/**
 * Drives a GossipNode on real sockets: one UDP socket for packets and a TCP listener on the same
 * port for push-pull streams (memberlist's layout), real timers, OS randomness, and the keyring
 * sealing everything that leaves and opening everything that arrives. Nothing that fails to open
 * reaches the core; every drop is counted. No protocol logic lives here.
 */

import type { Socket, udp } from "bun";
import { SystemRng } from "../../../lib/prng.ts";
import type { MemberAppState } from "../../../model/reports.ts";
import { DEFAULT_CONFIG, type GossipConfig } from "../config.ts";
import { GossipNode } from "../core.ts";
import type { Address, GossipEvent, GossipStats, Timer } from "../types.ts";
import { type Keyring, SEAL_OVERHEAD } from "../wire/crypto.ts";
import { type FrameSeal, keyringFrameSeal } from "../wire/stream-frame.ts";
import {
  DEFAULT_STREAM_LIMITS,
  type ListeningStreams,
  listenStreams,
  requestStream,
  type StreamLimits,
  type StreamServerStats,
} from "./tcp-streams.ts";

/** memberlist's UDP bound: nothing larger is sent, anything larger received is dropped. */
export const MAX_DATAGRAM_BYTES = 1400;

export interface UdpGossipAdapterOptions {
  name: string;
  keyring: Keyring;
  /** Address to bind, e.g. "0.0.0.0" or "127.0.0.1". */
  bindHost: string;
  /** UDP and TCP port; 0 picks a free one. */
  port: number;
  /** Address peers reach us at (default: bindHost). */
  advertiseHost?: string;
  config?: Partial<GossipConfig>;
  /**
   * Limits of the stream server (tcp-streams.ts; tests shorten the deadlines). Defaults:
   * DEFAULT_STREAM_LIMITS, the connection deadline at config.streamTimeoutMs, and bodies being
   * received at once up to twice the largest frame.
   */
  streamLimits?: Partial<StreamLimits>;
  /** Boot id (default: Date.now(), which grows across restarts). */
  boot?: number;
  /** Associated-data label for sealing; members of one cluster must agree. */
  label?: string;
  onEvent?: (event: GossipEvent) => void;
  /** Observe sealed traffic (tests record packets to replay them). */
  tap?: (direction: "in" | "out", peer: Address, sealed: Uint8Array) => void;
}

export interface AdapterStats {
  /** Datagrams above MAX_DATAGRAM_BYTES (or truncated by the kernel), dropped unopened. */
  oversized: number;
  /** Datagrams and frames that no key opened. */
  unopened: number;
  streamsServed: number;
  /** Streams cut without a reply: bad or unauthentic frame, invalid request, limits, deadlines. */
  streamsRefused: number;
  /** Send failures and ICMP errors reported by the UDP socket (a peer gone): packets lost. */
  socketErrors: number;
  /** Exceptions caught in socket handlers (should stay 0). */
  handlerErrors: number;
}

const splitAddress = (a: Address): { host: string; port: number } => {
  const i = a.lastIndexOf(":");
  const host = a.slice(0, i);
  return { host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(a.slice(i + 1)) };
};

const joinAddress = (host: string, port: number): Address =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;

export class UdpGossipAdapter {
  readonly adapterStats: AdapterStats = {
    oversized: 0,
    unopened: 0,
    streamsServed: 0,
    streamsRefused: 0,
    socketErrors: 0,
    handlerErrors: 0,
  };
  node!: GossipNode;
  address!: Address;
  private udp!: udp.Socket<"uint8array">;
  private tcp!: ListeningStreams;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly clients = new Set<Socket<unknown>>();
  private stopped = false;
  private readonly udpLabel: string;
  /** Largest sealed stream body: the largest plaintext stream message, sealed. */
  private readonly maxBody: number;
  private readonly seal: FrameSeal;
  private readonly streamLimits: StreamLimits;

  private constructor(private readonly opts: UdpGossipAdapterOptions) {
    const label = opts.label ?? "hashd-gossip";
    this.udpLabel = `${label}/udp`;
    const keyring = opts.keyring;
    const sealTcp = keyringFrameSeal(keyring, `${label}/tcp`);
    const unopened = <T>(v: T | null): T | null => {
      if (v === null) this.adapterStats.unopened++;
      return v;
    };
    this.seal = {
      frame: sealTcp.frame,
      openHeader: (h) => unopened(sealTcp.openHeader(h)),
      openBody: (b) => unopened(sealTcp.openBody(b)),
    };
    this.maxBody = (opts.config?.maxStreamBytes ?? DEFAULT_CONFIG.maxStreamBytes) + SEAL_OVERHEAD;
    this.streamLimits = {
      ...DEFAULT_STREAM_LIMITS,
      connectionTimeoutMs: opts.config?.streamTimeoutMs ?? DEFAULT_CONFIG.streamTimeoutMs,
      maxBufferedBytes: 2 * this.maxBody,
      ...opts.streamLimits,
    };
  }

  static async start(opts: UdpGossipAdapterOptions): Promise<UdpGossipAdapter> {
    const a = new UdpGossipAdapter(opts);
    await a.bind();
    const host = opts.advertiseHost ?? opts.bindHost;
    a.address = joinAddress(host, a.udp.port);
    const runtime = {
      send: (to: Address, packet: Uint8Array) => a.sendPacket(to, packet),
      schedule: (afterMs: number, timer: Timer) => a.schedule(afterMs, timer),
      openStream: (to: Address, request: Uint8Array, token: number) => a.openStream(to, request, token),
      notify: (event: GossipEvent) => opts.onEvent?.(event),
    };
    const identity = { name: opts.name, address: a.address, boot: opts.boot ?? Date.now() };
    a.node = new GossipNode(opts.config ?? {}, identity, new SystemRng(), Date.now(), runtime);
    return a;
  }

  /** UDP first (port 0 picks one), then TCP on the same port; retried if that port's TCP side is taken. */
  private async bind(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const udpSock = await Bun.udpSocket({
        hostname: this.opts.bindHost,
        port: this.opts.port,
        binaryType: "uint8array",
        socket: {
          data: (_s, data, port, address, flags) => this.onDatagram(data, port, address, flags.truncated),
          // ICMP "port unreachable" from a stopped peer surfaces here: normal, the probe handles it.
          error: () => {
            this.adapterStats.socketErrors++;
          },
        },
      });
      try {
        this.tcp = listenStreams({
          hostname: this.opts.bindHost,
          port: udpSock.port,
          maxBody: this.maxBody,
          limits: this.streamLimits,
          seal: this.seal,
          answer: (request) => this.answerStream(request),
          onRefused: () => {
            this.adapterStats.streamsRefused++;
          },
          onSocketError: () => {
            this.adapterStats.socketErrors++;
          },
        });
        this.udp = udpSock;
        return;
      } catch (e) {
        udpSock.close();
        if (this.opts.port !== 0 || attempt >= 10) throw e;
      }
    }
  }

  // ---- commands (wall clock supplied here) ---------------------------------------------------

  join(seeds: readonly Address[]): number {
    return this.node.join(seeds, Date.now());
  }

  pushPullNow(): void {
    this.node.pushPullNow(Date.now());
  }

  setLocalState(state: MemberAppState): void {
    this.node.setLocalState(state, Date.now());
  }

  setAlias(name: string, hash: string | null): void {
    this.node.setAlias(name, hash, Date.now());
  }

  /** The stream server's connections, deadlines and bytes held (tcp-streams.ts). */
  get streamStats(): Readonly<StreamServerStats> {
    return this.tcp.stats;
  }

  stats(): GossipStats & AdapterStats & { sealed: number; opened: number; openFailures: number } {
    const { sealed, opened, openFailures } = this.opts.keyring.stats;
    return { ...this.node.stats(), ...this.adapterStats, sealed, opened, openFailures };
  }

  /** Announce leaving, let gossip carry it for `graceMs`, then stop. */
  async leave(graceMs = 1000): Promise<void> {
    this.node.leave(Date.now());
    await Bun.sleep(graceMs);
    this.stop();
  }

  /** Stop at once (a crash, as far as peers can tell). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.clients) c.terminate();
    this.udp.close();
    this.tcp.stop();
  }

  // ---- runtime -------------------------------------------------------------------------------

  private guard(fn: () => void): void {
    if (this.stopped) return;
    try {
      fn();
    } catch (e) {
      this.adapterStats.handlerErrors++;
      console.error(`gossip ${this.opts.name}: handler error`, e);
    }
  }

  private schedule(afterMs: number, timer: Timer): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.guard(() => this.node.handleTimer(timer, Date.now()));
    }, afterMs);
    this.timers.add(t);
  }

  private sendPacket(to: Address, packet: Uint8Array): void {
    if (this.stopped) return;
    const sealed = this.opts.keyring.seal(packet, this.udpLabel);
    if (sealed.length > MAX_DATAGRAM_BYTES) return; // the core keeps packets under this; never send more
    const { host, port } = splitAddress(to);
    this.opts.tap?.("out", to, sealed);
    try {
      this.udp.send(sealed, port, host);
    } catch {
      // ECONNREFUSED from an earlier ICMP error and the like: a lost packet, which SWIM expects.
      this.adapterStats.socketErrors++;
    }
  }

  private onDatagram(data: Uint8Array, port: number, host: string, truncated: boolean): void {
    this.guard(() => {
      const from = joinAddress(host, port);
      this.opts.tap?.("in", from, data);
      if (truncated || data.length > MAX_DATAGRAM_BYTES) {
        this.adapterStats.oversized++;
        return;
      }
      const plain = this.opts.keyring.open(data, this.udpLabel);
      if (plain === null) {
        this.adapterStats.unopened++;
        return;
      }
      this.node.handlePacket(from, plain, Date.now());
    });
  }

  /** An opened stream request in, the plaintext reply out (null: refuse). */
  private answerStream(plain: Uint8Array): Uint8Array | null {
    if (this.stopped) return null;
    let reply: Uint8Array | null;
    try {
      reply = this.node.handleStreamRequest(plain, Date.now());
    } catch (e) {
      this.adapterStats.handlerErrors++;
      console.error(`gossip ${this.opts.name}: stream handler error`, e);
      return null;
    }
    if (reply === null) return null;
    this.adapterStats.streamsServed++;
    return reply;
  }

  private openStream(to: Address, request: Uint8Array, token: number): void {
    if (this.stopped) return;
    const { host, port } = splitAddress(to);
    requestStream({
      host,
      port,
      request,
      seal: this.seal,
      maxBody: this.maxBody,
      timeoutMs: this.node.config.streamTimeoutMs,
      open: this.clients,
      onReply: (plain) => {
        this.guard(() => this.node.handleStreamResponse(token, plain, Date.now()));
        return true;
      },
      onFail: (refused) => this.guard(() => this.node.handleStreamFailure(token, Date.now(), refused)),
    });
  }
}
