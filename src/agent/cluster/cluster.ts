import { hostname, networkInterfaces } from "node:os";
import { HashdError } from "../../lib/errors.ts";
import type { AliasRecord } from "../../model/alias-record.ts";
import type { Config } from "../../model/config.ts";
import type { HashReport, MemberAppState } from "../../model/reports.ts";
import type { AliasBackend } from "../aliases/alias-service.ts";
import { LocalAliasBackend } from "../aliases/local-backend.ts";
import type { GossipEvent, MemberInfo } from "../gossip/index.ts";
import { Keyring, UdpGossipAdapter } from "../gossip/index.ts";
import type { MemberView } from "../retirement/planner.ts";
import { renderGossipMetrics } from "./gossip-metrics.ts";

/** A member that runs a hash, as the ingress needs it to forward a request. */
export interface RemoteRunner {
  member: string;
  /** "ip:port" of its ingress */
  ingress: string;
  report: HashReport;
}

/**
 * What the agent knows of the other members: one gossip node, or, without a `gossip` section in
 * the config, a cluster of one. The retirement planner, the ingress and the status page read it.
 */
export interface Cluster {
  readonly self: string;
  readonly aliasBackend: AliasBackend;
  /** every member with its status and hashes, this one included (with `local`) */
  members(local: HashReport[]): MemberView[];
  memberInfos(): MemberInfo[];
  memberState(name: string): MemberAppState | null;
  /** other members (alive or suspect) that run a hash and publish an ingress */
  whoRuns(hash: string): RemoteRunner[];
  publish(state: MemberAppState): void;
  /** subkeys of the cluster keys (Keyring.derive); none for a cluster of one, which trusts no peer */
  derivedKeys(info: string): Buffer[];
  /** joins through the seeds, once this host's first report is published (a cluster of one: nothing) */
  join(seeds: readonly string[]): void;
  /** its Prometheus lines for /metrics (a cluster of one: none) */
  metrics(now?: number): string;
  /**
   * Push-pull exchanges merged so far, each of which brought a peer's whole alias table (the
   * rollout driver waits for one after it saw no majority); undefined for a cluster of one, which
   * is never behind.
   */
  aliasSyncs(): number | undefined;
  /** asks a live peer for its alias table now (one push-pull; a cluster of one: nothing) */
  syncAliases(): void;
  stop(): Promise<void>;
}

export class SoloCluster implements Cluster {
  readonly aliasBackend: AliasBackend;
  private state: MemberAppState = { hashes: [] };

  constructor(
    readonly self: string,
    restored: readonly AliasRecord[],
  ) {
    this.aliasBackend = new LocalAliasBackend(self, restored);
  }

  members(local: HashReport[]): MemberView[] {
    return [{ name: this.self, status: "alive", hashes: local }];
  }

  memberInfos(): MemberInfo[] {
    return [];
  }

  memberState(name: string): MemberAppState | null {
    return name === this.self ? this.state : null;
  }

  whoRuns(): RemoteRunner[] {
    return [];
  }

  publish(state: MemberAppState): void {
    this.state = state;
  }

  derivedKeys(): Buffer[] {
    return [];
  }

  join(): void {}

  metrics(): string {
    return "";
  }

  aliasSyncs(): undefined {
    return undefined;
  }

  syncAliases(): void {}

  async stop(): Promise<void> {}
}

/**
 * A journal line for each change of a member's status, as Serf logs its member events: what an
 * operator reads after the fact to see when this host suspected or declared a peer, and at which
 * incarnation.
 */
export const membershipLogLine = (e: GossipEvent): string | null => {
  if (e.type === "joined") return `gossip: joined through ${e.seed} (${e.members} members)`;
  if (e.type === "name-conflict") return `gossip: another member claims the name ${e.name} from ${e.address}`;
  if (e.type === "incarnation-exhausted")
    return `gossip: a message claimed ${e.field} ${e.claimed} for this member, at the bound ${e.bound}: not refuted (peers that took it see this member suspect, then dead, until they forget it)`;
  if (!("member" in e) || e.type === "member-reaped") return null;
  const m = e.member;
  return `gossip: ${m.name} (${m.address}) ${e.type.slice("member-".length)}, incarnation ${m.incarnation}`;
};

export class GossipCluster implements Cluster {
  private constructor(
    private readonly adapter: UdpGossipAdapter,
    readonly self: string,
    private readonly keyring: Keyring,
  ) {}

  derivedKeys(info: string): Buffer[] {
    return this.keyring.derive(info);
  }

  static async start(
    config: Config,
    restored: readonly AliasRecord[],
    onEvent: (e: GossipEvent) => void,
    log: (msg: string) => void,
  ): Promise<GossipCluster> {
    const g = config.gossip;
    if (!g) throw new HashdError("bad_request", "no gossip section in the config");
    if (!g.keyFile) {
      throw new HashdError(
        "bad_request",
        "gossip.keyFile is required: every packet is sealed with the cluster key",
      );
    }
    let keyring: Keyring;
    try {
      keyring = await Keyring.load(g.keyFile);
    } catch (e) {
      throw new HashdError("bad_request", `cannot use gossip key file ${g.keyFile}: ${(e as Error).message}`);
    }
    const name = g.name ?? hostname();
    const adapter = await UdpGossipAdapter.start({
      name,
      keyring,
      bindHost: g.address,
      port: g.port,
      advertiseHost: g.advertise ?? (g.address === "0.0.0.0" ? firstAddress() : g.address),
      onEvent: (e) => {
        const line = membershipLogLine(e);
        if (line !== null) log(line);
        onEvent(e);
      },
    });
    adapter.node.restoreAliases(restored, Date.now());
    log(`gossip: ${name} at ${adapter.address}`);
    return new GossipCluster(adapter, name, keyring);
  }

  /**
   * Joins through the seeds, called once the first local state is published. The gossip core keeps
   * them: it joins them again every 2 s while no other member is alive (seeds may boot after this
   * host, or a whole cluster may restart at once), and every 30 s tries one seed that is not an
   * alive member and, with Serf's odds, one failed member (gossip/swim/reconnect.ts). So a partition
   * heals even if every member of one side restarted meanwhile and neither side remembers the other.
   */
  join(seeds: readonly string[]): void {
    if (seeds.length > 0) this.adapter.join(seeds);
  }

  get aliasBackend(): AliasBackend {
    const node = this.adapter.node;
    return {
      setAliases: (entries, now) => node.setAliases(entries, now),
      aliases: () => node.aliases(),
    };
  }

  members(local: HashReport[]): MemberView[] {
    const node = this.adapter.node;
    return node.members().map((m) => ({
      name: m.name,
      status: m.state,
      hashes: m.name === this.self ? local : (node.memberState(m.name)?.hashes ?? []),
      reported: m.name === this.self || m.stateVersion !== null,
    }));
  }

  memberInfos(): MemberInfo[] {
    return this.adapter.node.members();
  }

  memberState(name: string): MemberAppState | null {
    return this.adapter.node.memberState(name);
  }

  whoRuns(hash: string): RemoteRunner[] {
    const node = this.adapter.node;
    return node
      .whoRuns(hash)
      .filter((r) => r.member.name !== this.self && r.report.state !== "retired")
      .flatMap((r) => {
        // only an IP literal the member could serve from (gossip/wire/addresses.ts), never a port of ours
        const ingress = node.routableIngress(r.member.name);
        return ingress ? [{ member: r.member.name, ingress, report: r.report }] : [];
      });
  }

  publish(state: MemberAppState): void {
    this.adapter.setLocalState(state);
  }

  /** Prometheus lines for /metrics: members by state, incarnations, last contact, counters. */
  aliasSyncs(): number {
    return this.adapter.node.stats().pushPullsMerged;
  }

  syncAliases(): void {
    this.adapter.pushPullNow();
  }

  metrics(now = Date.now()): string {
    return renderGossipMetrics({
      self: this.self,
      members: this.adapter.node.members(),
      stats: { ...this.adapter.stats(), queueDepth: this.adapter.node.stats().queueDepth },
      healthScore: this.adapter.node.healthScore,
      now,
    });
  }

  async stop(): Promise<void> {
    await this.adapter.leave(500);
    this.adapter.stop();
  }
}

/** The first non-internal IPv4 address: what peers reach a host at when bound to 0.0.0.0. */
export function firstAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}
