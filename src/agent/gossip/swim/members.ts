/**
 * The member table: every member we know (ourselves included), the probe order, and tombstones of
 * reaped members. Probe order follows memberlist (state.go probe/resetNodes): a list walked
 * round-robin, new members inserted at a random offset, the list reshuffled and dead members
 * reaped each time the walk wraps. Round-robin bounds the time until a failed member is probed
 * (SWIM section 4.3) while the shuffle keeps members from probing in lockstep.
 */

import { type Rng, randomInt, shuffle } from "../../../lib/prng.ts";
import type { MemberAppState } from "../../../model/reports.ts";
import type { Address, MemberInfo, MemberStatus, StateVersion } from "../types.ts";
import type { Suspicion } from "./suspicion.ts";

export interface Member {
  readonly name: string;
  addr: Address;
  inc: number;
  boot: number;
  status: MemberStatus;
  stateChangedAt: number;
  lastContact: number;
  suspicion: Suspicion | null;
  /** Version and content of its app state, once received (null before). */
  version: StateVersion | null;
  app: MemberAppState | null;
}

export interface Tombstone {
  inc: number;
  at: number;
  addr: Address;
  boot: number;
  left: boolean;
}

export const memberInfo = (m: Member): MemberInfo => ({
  name: m.name,
  address: m.addr,
  state: m.status,
  incarnation: m.inc,
  boot: m.boot,
  lastContact: m.lastContact,
  stateChangedAt: m.stateChangedAt,
  stateVersion: m.version === null ? null : { ...m.version },
});

export const isDeadOrLeft = (m: Member): boolean => m.status === "dead" || m.status === "left";

export class MemberTable {
  readonly byName = new Map<string, Member>();
  private readonly byAddr = new Map<Address, Member>();
  private list: Member[] = [];
  private probeIndex = 0;
  private readonly tombstones = new Map<string, Tombstone>();

  get size(): number {
    return this.byName.size;
  }

  get(name: string): Member | undefined {
    return this.byName.get(name);
  }

  byAddress(addr: Address): Member | undefined {
    return this.byAddr.get(addr);
  }

  /** Insert at a random offset so members joining together are not probed in arrival order. */
  add(m: Member, rng: Rng): void {
    this.byName.set(m.name, m);
    this.byAddr.set(m.addr, m);
    this.tombstones.delete(m.name);
    const offset = randomInt(rng, this.list.length + 1);
    this.list.push(m);
    const last = this.list.length - 1;
    this.list[last] = this.list[offset] as Member;
    this.list[offset] = m;
  }

  setAddress(m: Member, addr: Address): void {
    if (this.byAddr.get(m.addr) === m) this.byAddr.delete(m.addr);
    m.addr = addr;
    this.byAddr.set(addr, m);
  }

  /** A replayed alive for a reaped member must not bring it back at an incarnation it already had. */
  isBuried(name: string, inc: number): boolean {
    const t = this.tombstones.get(name);
    return t !== undefined && inc <= t.inc;
  }

  /**
   * The next member to probe, skipping ourselves and dead or left members. On wrap-around the dead
   * are reaped (after `reapAfterMs` in that state) and the list is reshuffled.
   */
  nextProbeTarget(
    selfName: string,
    rng: Rng,
    now: number,
    reapAfterMs: number,
    reaped: Member[],
  ): Member | null {
    let checked = 0;
    while (checked <= this.list.length) {
      if (this.probeIndex >= this.list.length) {
        this.reap(now, reapAfterMs, reaped);
        shuffle(rng, this.list);
        this.probeIndex = 0;
        checked++;
        continue;
      }
      const m = this.list[this.probeIndex++] as Member;
      checked++;
      if (m.name === selfName || isDeadOrLeft(m)) continue;
      return m;
    }
    return null;
  }

  /**
   * Up to k distinct random members accepted by `accept` (memberlist kRandomNodes: at most 3n
   * draws, exhaustive enough for small n and O(k) for large n).
   */
  kRandom(k: number, rng: Rng, accept: (m: Member) => boolean): Member[] {
    const out: Member[] = [];
    const n = this.list.length;
    for (let i = 0; i < 3 * n && out.length < k; i++) {
      const m = this.list[randomInt(rng, n)] as Member;
      if (!accept(m) || out.includes(m)) continue;
      out.push(m);
    }
    return out;
  }

  all(): IterableIterator<Member> {
    return this.byName.values();
  }

  private reap(now: number, reapAfterMs: number, reaped: Member[]): void {
    const keep: Member[] = [];
    for (const m of this.list) {
      if (isDeadOrLeft(m) && now - m.stateChangedAt > reapAfterMs) {
        this.byName.delete(m.name);
        if (this.byAddr.get(m.addr) === m) this.byAddr.delete(m.addr);
        this.tombstones.delete(m.name); // re-insert: the map's order is the expiry order
        this.tombstones.set(m.name, {
          inc: m.inc,
          at: now,
          addr: m.addr,
          boot: m.boot,
          left: m.status === "left",
        });
        reaped.push(m);
      } else {
        keep.push(m);
      }
    }
    this.list = keep;
  }

  /** Reaped members, oldest first (push-pull still reports them as dead: see sync.ts). */
  buried(): IterableIterator<[string, Tombstone]> {
    return this.tombstones.entries();
  }

  get buriedCount(): number {
    return this.tombstones.size;
  }

  /** Forget tombstones older than `maxAgeMs`, and the oldest beyond `maxCount`. */
  expireTombstones(now: number, maxAgeMs: number, maxCount: number): void {
    for (const [name, t] of this.tombstones) {
      if (now - t.at <= maxAgeMs && this.tombstones.size <= maxCount) break;
      this.tombstones.delete(name);
    }
  }
}
