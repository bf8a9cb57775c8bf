import type { Database } from "bun:sqlite";
import { HashdError } from "../../lib/errors.ts";
import { type AliasRecord, type AliasTarget, type AliasWrite, targetsOf } from "../../model/alias-record.ts";
import type { AliasRoute } from "../../model/alias-route.ts";
import type { Config } from "../../model/config.ts";
import { isActiveRollout, type RolloutState } from "../../model/rollout-state.ts";
import type { FormerRoot, Root } from "../../model/roots.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import { parseAliasValue } from "./alias-value.ts";
import { hashOfPin, parseAliasName, pinName } from "./names.ts";

/** Where alias records live: the gossip node (cluster-wide) or a local table (a lone agent). */
export interface AliasBackend {
  setAliases(entries: readonly AliasWrite[], now: number): AliasRecord[];
  aliases(): AliasRecord[];
}

export interface AliasView {
  name: string;
  /** the target, or a weighted alias's heaviest target */
  hash: string;
  /** a weighted alias: every target with its weight in percent */
  split?: AliasTarget[];
  /** the staged rollout or guard the last write belongs to (running, paused or ended) */
  rollout?: RolloutState;
  setAt: number;
  by: string;
  /** the hashes it pointed at before, newest first (as the winning write carries them) */
  previous: string[];
}

export interface HistoryEntry {
  hash: string | null;
  split?: AliasTarget[];
  /** the rollout's status and note when a rollout or guard made the write */
  rollout?: { status: string; step: number; note: string };
  at: number;
  by: string;
}

/** How stale the set of aliased hashes may be (aliased mode of the ingress, isAliased). */
export const ALIASED_SET_TTL_MS = 250;

export type RetentionPolicy = { kind: "retire" } | { kind: "keep" } | { kind: "keep-last"; count: number };

/**
 * Aliases and pins on top of the cluster-wide last-writer-wins records: atomic multi-alias
 * writes (one record set, one timestamp, one broadcast), the history each agent saw, rollback,
 * and the roots of the retirement planner. Rollback and keep-last retention read the previous
 * targets the winning record carries, not this agent's own history: members that missed writes
 * (down, cut off) would otherwise roll back to, or keep, different hashes.
 */
export class AliasService {
  private cache: { aliased: Set<string>; routes: Map<string, AliasRoute> } | undefined;
  private cacheUntil = 0;

  constructor(
    private readonly backend: AliasBackend,
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * One atomic write of several aliases: each to a hash, to a weighted split (`<a>:90,<b>:10`,
   * alias-value.ts), or null to remove it. A write by hand ends any rollout the alias was in.
   */
  set(entries: Record<string, string | null>): AliasView[] {
    const list: AliasWrite[] = Object.entries(entries).map(([name, value]) => ({
      name: parseAliasName(name),
      ...(value === null ? { hash: null } : parseAliasValue(value)),
    }));
    if (list.length === 0) throw new HashdError("bad_request", "no alias given (expected name=<hash>)");
    this.write(list);
    return this.list();
  }

  /** One write as given (a rollout's step, a guard's switch): recorded and the caches dropped. */
  write(list: readonly AliasWrite[]): AliasRecord[] {
    const records = this.backend.setAliases(list, this.now());
    for (const r of records) this.record(r);
    this.cache = undefined;
    return records;
  }

  /** The winning record of every alias (not pins), removed ones included. */
  records(): AliasRecord[] {
    return this.backend.aliases().filter((r) => hashOfPin(r.name) === undefined);
  }

  /** The winning record of an alias (not a pin), removed ones included. */
  recordOf(name: string): AliasRecord | undefined {
    return this.backend.aliases().find((r) => r.name === name);
  }

  remove(name: string): void {
    parseAliasName(name);
    if (!this.current(name)) throw new HashdError("not_found", `alias ${name} does not exist`);
    this.set({ [name]: null });
  }

  /** Points an alias back at the hash it had before, if that hash can still serve. */
  rollback(name: string, isLive: (hash: string) => boolean): AliasView {
    const current = this.current(parseAliasName(name));
    if (!current) throw new HashdError("not_found", `alias ${name} does not exist`);
    const previous = this.previousOf(current)[0];
    if (!previous) throw new HashdError("conflict", `alias ${name} has no earlier hash to roll back to`);
    if (!isLive(previous)) {
      throw new HashdError(
        "conflict",
        `the previous hash of ${name}, ${previous}, is retired; activate it again, then set the alias`,
      );
    }
    this.set({ [name]: previous });
    return this.current(name) as AliasView;
  }

  /**
   * What an alias pointed at before, newest first: the winning record's previous targets, or,
   * for a record this agent kept from before records carried them, its own history (so that an
   * upgrade does not drop what keep-last kept until the alias is written again).
   */
  private previousOf(current: AliasView): string[] {
    if (current.previous.length > 0 || !this.recordedWithoutPrevious(current)) return current.previous;
    const out: string[] = [];
    for (const h of this.history(current.name, 1000))
      if (h.hash !== null && h.hash !== current.hash && !out.includes(h.hash)) out.push(h.hash);
    return out;
  }

  pin(hash: string): void {
    this.record(
      this.backend.setAliases([{ name: pinName(parseStoreHash(hash)), hash }], this.now())[0] as AliasRecord,
    );
  }

  unpin(hash: string): void {
    const name = pinName(parseStoreHash(hash));
    if (!this.backend.aliases().some((r) => r.name === name && r.hash !== null)) {
      throw new HashdError("not_found", `hash ${hash} is not pinned`);
    }
    this.record(this.backend.setAliases([{ name, hash: null }], this.now())[0] as AliasRecord);
  }

  pins(): string[] {
    return this.backend
      .aliases()
      .filter((r) => r.hash !== null && hashOfPin(r.name) !== undefined)
      .map((r) => r.hash as string)
      .sort();
  }

  list(): AliasView[] {
    return this.backend
      .aliases()
      .filter((r) => r.hash !== null && hashOfPin(r.name) === undefined)
      .map((r) => {
        const view: AliasView = {
          name: r.name,
          hash: r.hash as string,
          setAt: r.hlc.wall,
          by: r.origin,
          previous: [...r.previous],
        };
        if (r.split !== undefined) view.split = r.split.map((t) => ({ ...t }));
        if (r.rollout !== undefined) view.rollout = structuredClone(r.rollout);
        return view;
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  current(name: string): AliasView | undefined {
    return this.list().find((a) => a.name === name);
  }

  resolve(name: string): string | undefined {
    return this.current(name)?.hash;
  }

  /**
   * Whether an alias (not a pin) points at `hash` now: the ingress asks on every request for a
   * hash URL in "aliased" mode, so the set is kept, built again after a write here and otherwise at
   * most ALIASED_SET_TTL_MS old (a gossiped switch is seen within that).
   */
  isAliased(hash: string): boolean {
    return this.routing().aliased.has(hash);
  }

  /**
   * An alias as the ingress routes it: its targets and the hashes a sticky cookie may pin (its
   * targets, the earlier ones its record carries, a rollout's baseline; not a canary its rollout
   * aborted). Asked on every alias request: kept like the aliased set.
   */
  routeOf(name: string): AliasRoute | undefined {
    return this.routing().routes.get(name);
  }

  private routing(): { aliased: Set<string>; routes: Map<string, AliasRoute> } {
    const now = this.now();
    if (this.cache === undefined || now >= this.cacheUntil) {
      const routes = new Map<string, AliasRoute>();
      for (const a of this.list()) {
        const pinnable = new Set([...targetsOf(a), ...a.previous]);
        if (isActiveRollout(a.rollout)) pinnable.add(a.rollout.from).add(a.rollout.to);
        // an aborted canary failed its judge: its pinned clients go back with everyone else
        if (a.rollout?.status === "aborted" && !targetsOf(a).includes(a.rollout.to))
          pinnable.delete(a.rollout.to);
        routes.set(a.name, { hash: a.hash, split: a.split, pinnable });
      }
      const aliased = new Set([...routes.values()].flatMap((r) => targetsOf(r)));
      this.cache = { aliased, routes };
      this.cacheUntil = now + ALIASED_SET_TTL_MS;
    }
    return this.cache;
  }

  /**
   * Whether an alias or a pin points at `hash` now, or it is the baseline of a rollout under way
   * (then the retirer brings it back if it can).
   */
  isWanted(hash: string): boolean {
    return this.backend
      .aliases()
      .some((r) => targetsOf(r).includes(hash) || (isActiveRollout(r.rollout) && r.rollout.from === hash));
  }

  /**
   * Aliases (not pins) that pointed at `hash`, from the winning records (their target and previous
   * ones) and this agent's alias history, at most `limit`, most recent writes first.
   */
  formerAliasesOf(hash: string, limit: number): string[] {
    const names = new Set<string>();
    const records = this.backend
      .aliases()
      .filter(
        (r) => hashOfPin(r.name) === undefined && (targetsOf(r).includes(hash) || r.previous.includes(hash)),
      )
      .sort((a, b) => b.hlc.wall - a.hlc.wall);
    for (const r of records) names.add(r.name);
    const rows = this.db
      .query(
        `SELECT name FROM alias_history WHERE hash = ? AND name NOT LIKE 'pin:%'
         GROUP BY name ORDER BY MAX(hlc_wall) DESC LIMIT ?`,
      )
      .all(hash, limit) as { name: string }[];
    for (const r of rows) names.add(r.name);
    return [...names].slice(0, limit);
  }

  private recordedWithoutPrevious(a: AliasView): boolean {
    const row = this.db
      .query(
        `SELECT previous FROM alias_history WHERE name = ? AND hlc_wall = ? AND origin = ?
         ORDER BY hlc_logical DESC LIMIT 1`,
      )
      .get(a.name, a.setAt, a.by) as { previous: string | null } | null;
    return row !== null && row.previous === null;
  }

  /** Newest first, as this agent saw the writes win. */
  history(name: string, limit = 100): HistoryEntry[] {
    const rows = this.db
      .query(
        `SELECT hash, split, rollout, hlc_wall AS at, origin AS by FROM alias_history WHERE name = ?
         ORDER BY hlc_wall DESC, hlc_logical DESC, origin DESC LIMIT ?`,
      )
      .all(name, limit) as (HistoryEntry & { split: string | null; rollout: string | null })[];
    return rows.map(({ split, rollout, ...row }) => {
      const entry: HistoryEntry = row;
      if (split !== null) entry.split = JSON.parse(split) as AliasTarget[];
      if (rollout !== null) {
        const r = JSON.parse(rollout) as RolloutState;
        entry.rollout = { status: r.status, step: r.step, note: r.note };
      }
      return entry;
    });
  }

  /** Keeps a winning write (local or gossiped) in the history; duplicates are ignored. */
  record(r: AliasRecord): void {
    recordAliasWrite(this.db, r, this.now());
  }

  /** The winning record of every name this agent has seen, to restore the table after a restart. */
  latestRecords(): AliasRecord[] {
    return latestAliasRecords(this.db);
  }

  /**
   * Earlier targets of every alias and pin, removed ones included, from the winning records (the
   * same on every member), each with the time of the write that moved the name away from it.
   */
  formerRoots(): FormerRoot[] {
    const out: FormerRoot[] = [];
    for (const r of this.backend.aliases()) {
      const what = hashOfPin(r.name) !== undefined ? "pinned before" : `an earlier target of alias ${r.name}`;
      for (const hash of r.previous) out.push({ hash, reason: what, until: r.hlc.wall });
    }
    return out;
  }

  /**
   * What the retirement planner must keep: aliased and pinned hashes, and the policy's extras
   * (keep-last: the alias's target and the previous ones its winning record carries, so every
   * member keeps the same set once their alias tables agree).
   */
  roots(policy: RetentionPolicy): Root[] {
    const roots: Root[] = [];
    const aliases = this.list();
    for (const a of aliases) {
      if (a.split === undefined) roots.push({ hash: a.hash, reason: `alias ${a.name}` });
      else for (const t of a.split) roots.push({ hash: t.hash, reason: `alias ${a.name} (${t.weight}%)` });
      if (isActiveRollout(a.rollout) && !targetsOf(a).includes(a.rollout.from))
        roots.push({ hash: a.rollout.from, reason: `baseline of the rollout of ${a.name}` });
    }
    for (const h of this.pins()) roots.push({ hash: h, reason: "pinned" });
    if (policy.kind === "keep-last") {
      for (const a of aliases)
        for (const h of this.previousOf(a).slice(0, policy.count - 1))
          roots.push({ hash: h, reason: `one of the last ${policy.count} of alias ${a.name}` });
    }
    return roots;
  }
}

/**
 * Keeps a winning write (local or gossiped) in the agent's alias history; duplicates are ignored.
 * It needs only the database: the agent records gossiped writes from the moment its gossip node
 * starts, before the AliasService on that node's table exists.
 */
export function recordAliasWrite(db: Database, r: AliasRecord, seenAt: number): void {
  db.query(
    `INSERT OR IGNORE INTO alias_history
       (name, hash, hlc_wall, hlc_logical, origin, seen_at, previous, split, rollout)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    r.name,
    r.hash,
    r.hlc.wall,
    r.hlc.logical,
    r.origin,
    seenAt,
    JSON.stringify(r.previous),
    r.split === undefined ? null : JSON.stringify(r.split),
    r.rollout === undefined ? null : JSON.stringify(r.rollout),
  );
}

/**
 * The winning record of every name in the alias history: what a restarted agent gives its alias
 * table (the gossip node's, or the local one) before it has one.
 */
export function latestAliasRecords(db: Database): AliasRecord[] {
  const rows = db
    .query(
      `SELECT name, hash, hlc_wall, hlc_logical, origin, previous, split, rollout FROM alias_history h
       WHERE NOT EXISTS (SELECT 1 FROM alias_history n WHERE n.name = h.name AND
         (n.hlc_wall, n.hlc_logical, n.origin) > (h.hlc_wall, h.hlc_logical, h.origin))`,
    )
    .all() as {
    name: string;
    hash: string | null;
    hlc_wall: number;
    hlc_logical: number;
    origin: string;
    previous: string | null;
    split: string | null;
    rollout: string | null;
  }[];
  return rows.map((r) => {
    const record: AliasRecord = {
      name: r.name,
      hash: r.hash,
      hlc: { wall: r.hlc_wall, logical: r.hlc_logical },
      origin: r.origin,
      previous: JSON.parse(r.previous ?? "[]") as string[],
    };
    if (r.split !== null) record.split = JSON.parse(r.split) as AliasTarget[];
    if (r.rollout !== null) record.rollout = JSON.parse(r.rollout) as RolloutState;
    return record;
  });
}

/** The config's `retention` (policy, count) as the roots and the retirer read it. */
export function retentionPolicy(retention: Config["retention"]): RetentionPolicy {
  return retention.policy === "keep-last"
    ? { kind: "keep-last", count: retention.count }
    : { kind: retention.policy };
}
