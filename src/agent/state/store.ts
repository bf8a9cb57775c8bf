import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Deployment, DeploymentEvent, DeploymentState } from "../../model/deployment.ts";
import { type Manifest, storedManifest } from "../../model/manifest.ts";

/** Ordered schema migrations; PRAGMA user_version records how many have run. */
const MIGRATIONS: string[] = [
  `CREATE TABLE deployments (
     hash TEXT PRIMARY KEY,
     path TEXT NOT NULL,
     name TEXT NOT NULL,
     state TEXT NOT NULL,
     manifest TEXT NOT NULL,
     error TEXT,
     generation INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     ready_at INTEGER
   );
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     hash TEXT NOT NULL,
     kind TEXT NOT NULL,
     message TEXT NOT NULL
   );
   CREATE INDEX events_by_hash ON events (hash, id);`,
  // Every alias write this agent saw win (its own and gossiped ones): history and rollback.
  `CREATE TABLE alias_history (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     name TEXT NOT NULL,
     hash TEXT,
     hlc_wall INTEGER NOT NULL,
     hlc_logical INTEGER NOT NULL,
     origin TEXT NOT NULL,
     seen_at INTEGER NOT NULL,
     UNIQUE (name, hlc_wall, hlc_logical, origin)
   );
   CREATE INDEX alias_history_by_name ON alias_history (name, hlc_wall, hlc_logical);`,
  // The service hashes a closure references (Nix runtime references): the dependency edges.
  `ALTER TABLE deployments ADD COLUMN refs TEXT NOT NULL DEFAULT '[]';`,
  // Set once an alias, pin or wanted dependent reached the hash: only such hashes can retire.
  "ALTER TABLE deployments ADD COLUMN ever_wanted INTEGER NOT NULL DEFAULT 0;",
  // Every gossip member ever known and not seen to leave: the retirement planner's majority.
  "CREATE TABLE known_members (name TEXT PRIMARY KEY);",
  // Leases on hashes taken through the service API (holds/holds.ts): a restart must not forget
  // a job's hold, or its hash could retire under it.
  `CREATE TABLE holds (
     id TEXT PRIMARY KEY,
     hash TEXT NOT NULL,
     ttl_sec REAL NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );`,
  // Activated again by hand after it was wanted (kept until wanted again, see the planner), and
  // retired by hand (`deactivate`: never brought back by the retirer when wanted again).
  `ALTER TABLE deployments ADD COLUMN reactivated INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE deployments ADD COLUMN retired_by_hand INTEGER NOT NULL DEFAULT 0;
   UPDATE deployments SET retired_by_hand = 1 WHERE state = 'retired' AND (
     SELECT message FROM events e WHERE e.hash = deployments.hash AND e.kind = 'retired'
     ORDER BY e.id DESC LIMIT 1) = 'deactivated';`,
  // The previous targets an alias record carries (gossip/types.ts AliasRecord.previous), as JSON;
  // NULL in rows recorded before records carried them.
  "ALTER TABLE alias_history ADD COLUMN previous TEXT;",
  // When the current deployment of the hash began (its last activation); created_at stays the
  // first one. Rows from before start from created_at.
  `ALTER TABLE deployments ADD COLUMN activated_at INTEGER;
   UPDATE deployments SET activated_at = created_at;`,
  // Hashes other members reported retired (cluster/retired-elsewhere.ts), so the ingress answers
  // 410 for them after the report left gossip (10 minutes) and after a restart; bounded, the
  // oldest go first. The alias history by hash: the 410's "where the aliases point now".
  `CREATE TABLE retired_elsewhere (
     hash TEXT PRIMARY KEY,
     member TEXT NOT NULL,
     retired_at INTEGER NOT NULL
   );
   CREATE INDEX retired_elsewhere_by_time ON retired_elsewhere (retired_at);
   CREATE INDEX alias_history_by_hash ON alias_history (hash);`,
  // A weighted alias's targets and the rollout a write carries (model/alias-record.ts), as JSON.
  `ALTER TABLE alias_history ADD COLUMN split TEXT;
   ALTER TABLE alias_history ADD COLUMN rollout TEXT;`,
];

/** A retirement another member reported (retired_elsewhere). */
export interface RetiredElsewhere {
  hash: string;
  member: string;
  /** when this agent first heard of it (reports carry no time) */
  retiredAt: number;
}

/** A hold as kept in the database (the shape of holds/holds.ts's Hold). */
export interface StoredHold {
  id: string;
  hash: string;
  ttlSec: number;
  createdAt: number;
  expiresAt: number;
}

interface DeploymentRow {
  hash: string;
  path: string;
  name: string;
  state: DeploymentState;
  manifest: string;
  error: string | null;
  generation: number;
  created_at: number;
  updated_at: number;
  ready_at: number | null;
  refs: string;
  ever_wanted: number;
  reactivated: number;
  retired_by_hand: number;
  activated_at: number | null;
}

function fromRow(row: DeploymentRow): Deployment {
  return {
    hash: row.hash,
    path: row.path,
    name: row.name,
    state: row.state,
    manifest: storedManifest(JSON.parse(row.manifest)),
    error: row.error,
    generation: row.generation,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    readyAt: row.ready_at,
    refs: JSON.parse(row.refs) as string[],
    everWanted: row.ever_wanted === 1,
    reactivated: row.reactivated === 1,
    retiredByHand: row.retired_by_hand === 1,
    activatedAt: row.activated_at ?? row.created_at,
  };
}

/**
 * The agent's durable state. WAL mode with synchronous=FULL: a kill -9 at any instant leaves the
 * last committed transaction; every state change is one transaction together with its event.
 */
export class StateStore {
  readonly db: Database;

  constructor(
    file: string,
    private readonly now: () => number = Date.now,
  ) {
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file, { create: true, strict: true });
    this.db.run("PRAGMA journal_mode = WAL");
    this.db.run("PRAGMA synchronous = FULL");
    this.db.run("PRAGMA busy_timeout = 5000");
    this.db.run("PRAGMA foreign_keys = ON");
    this.migrate();
  }

  private migrate(): void {
    const { user_version: version } = this.db.query("PRAGMA user_version").get() as { user_version: number };
    for (let i = version; i < MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.run(MIGRATIONS[i] as string);
        this.db.run(`PRAGMA user_version = ${i + 1}`);
      })();
    }
  }

  close(): void {
    this.db.close();
  }

  get(hash: string): Deployment | undefined {
    const row = this.db.query("SELECT * FROM deployments WHERE hash = ?").get(hash) as DeploymentRow | null;
    return row ? fromRow(row) : undefined;
  }

  list(): Deployment[] {
    const rows = this.db
      .query("SELECT * FROM deployments ORDER BY created_at, hash")
      .all() as DeploymentRow[];
    return rows.map(fromRow);
  }

  /**
   * Records a new activation attempt of a hash (insert, or a new generation of an old row). By
   * hand (`hashd activate`), a hash that was wanted starts over as a fresh deployment: not wanted
   * since (everWanted off) and `reactivated`; the agent's own activation of a hash wanted again
   * (`byHand` false) keeps its marks.
   */
  beginActivation(
    path: string,
    hash: string,
    manifest: Manifest,
    reason: string,
    refs: string[] = [],
    byHand = true,
  ): Deployment {
    const at = this.now();
    return this.db.transaction(() => {
      // every expression on the right reads the row as it was before this update
      this.db
        .query(
          `INSERT INTO deployments (hash, path, name, state, manifest, error, generation, created_at, updated_at, ready_at, refs, activated_at)
           VALUES ($hash, $path, $name, 'activating', $manifest, NULL, 1, $at, $at, NULL, $refs, $at)
           ON CONFLICT (hash) DO UPDATE SET
             path = $path, name = $name, state = 'activating', manifest = $manifest, error = NULL,
             generation = generation + 1, updated_at = $at, ready_at = NULL, refs = $refs, activated_at = $at,
             ever_wanted = CASE WHEN $byHand THEN 0 ELSE ever_wanted END,
             reactivated = CASE WHEN $byHand THEN (ever_wanted = 1 OR reactivated = 1) ELSE reactivated END,
             retired_by_hand = 0`,
        )
        .run({
          hash,
          path,
          name: manifest.name,
          manifest: JSON.stringify(manifest),
          at,
          refs: JSON.stringify(refs),
          byHand: byHand ? 1 : 0,
        });
      this.insertEvent(hash, "activating", reason, at);
      return this.get(hash) as Deployment;
    })();
  }

  /**
   * Moves a deployment to a new state, but only if it is still at the generation the caller
   * worked on (a late result of an older attempt never overwrites a newer one) and, with `from`,
   * still in the state the caller saw.
   */
  transition(
    hash: string,
    generation: number,
    state: DeploymentState,
    message: string,
    error: string | null = null,
    from?: DeploymentState,
  ): Deployment | undefined {
    const at = this.now();
    return this.db.transaction(() => {
      const r = this.db
        .query(
          `UPDATE deployments SET state = $state, error = $error, updated_at = $at,
             ready_at = CASE WHEN $state = 'ready' THEN $at ELSE ready_at END
           WHERE hash = $hash AND generation = $generation AND ($from IS NULL OR state = $from)`,
        )
        .run({ hash, generation, state, error, at, from: from ?? null });
      if (r.changes === 0) return undefined;
      this.insertEvent(hash, state, message, at);
      return this.get(hash);
    })();
  }

  /**
   * `hashd activate` of a draining hash: back in service (ready or idle, as its service runs) and,
   * like any activation by hand, a fresh deployment again (see beginActivation). Only from
   * draining, at the generation the caller saw.
   */
  undrainByHand(
    hash: string,
    generation: number,
    state: "ready" | "idle",
    message: string,
  ): Deployment | undefined {
    const at = this.now();
    return this.db.transaction(() => {
      const r = this.db
        .query(
          `UPDATE deployments SET state = $state, updated_at = $at, ever_wanted = 0,
             reactivated = (ever_wanted = 1 OR reactivated = 1)
           WHERE hash = $hash AND generation = $generation AND state = 'draining'`,
        )
        .run({ hash, generation, state, at });
      if (r.changes === 0) return undefined;
      this.insertEvent(hash, state, message, at);
      return this.get(hash);
    })();
  }

  /** `hashd deactivate`: retired by hand, so never activated again by the retirer. */
  retireByHand(hash: string, generation: number, message: string): Deployment | undefined {
    return this.db.transaction(() => {
      const d = this.transition(hash, generation, "retired", message);
      if (!d) return undefined;
      this.db.query("UPDATE deployments SET retired_by_hand = 1 WHERE hash = ?").run(hash);
      return this.get(hash);
    })();
  }

  markWanted(hash: string, reason: string): void {
    this.db.transaction(() => {
      const r = this.db
        .query("UPDATE deployments SET ever_wanted = 1, reactivated = 0 WHERE hash = ? AND ever_wanted = 0")
        .run(hash);
      if (r.changes > 0) this.insertEvent(hash, "wanted", reason, this.now());
    })();
  }

  /** A hash's state and when it last changed, without reading its manifest (the 410 path). */
  lastState(hash: string): { state: DeploymentState; updatedAt: number; retiredByHand: boolean } | undefined {
    const row = this.db
      .query("SELECT state, updated_at, retired_by_hand FROM deployments WHERE hash = ?")
      .get(hash) as { state: DeploymentState; updated_at: number; retired_by_hand: number } | null;
    if (row === null) return undefined;
    return { state: row.state, updatedAt: row.updated_at, retiredByHand: row.retired_by_hand === 1 };
  }

  retiredElsewhere(hash: string): RetiredElsewhere | undefined {
    const row = this.db
      .query("SELECT hash, member, retired_at AS retiredAt FROM retired_elsewhere WHERE hash = ?")
      .get(hash) as RetiredElsewhere | null;
    return row ?? undefined;
  }

  retiredElsewhereHashes(): string[] {
    const rows = this.db.query("SELECT hash FROM retired_elsewhere").all() as { hash: string }[];
    return rows.map((r) => r.hash);
  }

  /**
   * One transaction: remembers retirements heard of (the first report of a hash is kept), forgets
   * hashes a member reports live again, and keeps the newest `max` rows. Returns the hashes the
   * cap evicted.
   */
  noteRetiredElsewhere(
    heard: readonly RetiredElsewhere[],
    liveAgain: readonly string[],
    max: number,
  ): string[] {
    return this.db.transaction(() => {
      const insert = this.db.query(
        "INSERT OR IGNORE INTO retired_elsewhere (hash, member, retired_at) VALUES (?, ?, ?)",
      );
      for (const r of heard) insert.run(r.hash, r.member, r.retiredAt);
      const remove = this.db.query("DELETE FROM retired_elsewhere WHERE hash = ?");
      for (const h of liveAgain) remove.run(h);
      const { n } = this.db.query("SELECT COUNT(*) AS n FROM retired_elsewhere").get() as { n: number };
      if (n <= max) return [];
      const evicted = this.db
        .query("SELECT hash FROM retired_elsewhere ORDER BY retired_at, hash LIMIT ?")
        .all(n - max) as { hash: string }[];
      for (const e of evicted) remove.run(e.hash);
      return evicted.map((e) => e.hash);
    })();
  }

  /** The members the retirement planner counts its majority of (kept across restarts). */
  knownMembers(): string[] {
    const rows = this.db.query("SELECT name FROM known_members ORDER BY name").all() as { name: string }[];
    return rows.map((r) => r.name);
  }

  setKnownMembers(names: readonly string[]): void {
    this.db.transaction(() => {
      this.db.run("DELETE FROM known_members");
      const insert = this.db.query("INSERT INTO known_members (name) VALUES (?)");
      for (const n of names) insert.run(n);
    })();
  }

  /** Every hold not released (expired ones included: the caller decides what they mean). */
  holds(): StoredHold[] {
    return this.db
      .query(
        `SELECT id, hash, ttl_sec AS ttlSec, created_at AS createdAt, expires_at AS expiresAt
         FROM holds ORDER BY created_at, id`,
      )
      .all() as StoredHold[];
  }

  /** Records a new hold or a renewal (a new expiry, maybe a new ttl). */
  saveHold(hold: StoredHold): void {
    this.db.transaction(() => {
      this.db
        .query(
          `INSERT INTO holds (id, hash, ttl_sec, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET ttl_sec = excluded.ttl_sec, expires_at = excluded.expires_at`,
        )
        .run(hold.id, hold.hash, hold.ttlSec, hold.createdAt, hold.expiresAt);
    })();
  }

  /** Forgets released or expired holds. */
  removeHolds(ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.db.transaction(() => {
      const remove = this.db.query("DELETE FROM holds WHERE id = ?");
      for (const id of ids) remove.run(id);
    })();
  }

  event(hash: string, kind: string, message: string): void {
    this.insertEvent(hash, kind, message, this.now());
  }

  events(hash?: string, limit = 100): DeploymentEvent[] {
    const rows = hash
      ? this.db.query("SELECT * FROM events WHERE hash = ? ORDER BY id DESC LIMIT ?").all(hash, limit)
      : this.db.query("SELECT * FROM events ORDER BY id DESC LIMIT ?").all(limit);
    return rows as DeploymentEvent[];
  }

  private insertEvent(hash: string, kind: string, message: string, at: number): void {
    this.db
      .query("INSERT INTO events (at, hash, kind, message) VALUES (?, ?, ?, ?)")
      .run(at, hash, kind, message);
  }
}
