import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Manifest } from "../manifest.ts";
import type { Deployment, DeploymentEvent, DeploymentState } from "./deployment.ts";

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
];

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
}

function fromRow(row: DeploymentRow): Deployment {
  return {
    hash: row.hash,
    path: row.path,
    name: row.name,
    state: row.state,
    manifest: JSON.parse(row.manifest) as Manifest,
    error: row.error,
    generation: row.generation,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    readyAt: row.ready_at,
    refs: JSON.parse(row.refs) as string[],
    everWanted: row.ever_wanted === 1,
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

  /** Records a new activation attempt of a hash (insert, or a new generation of an old row). */
  beginActivation(
    path: string,
    hash: string,
    manifest: Manifest,
    reason: string,
    refs: string[] = [],
  ): Deployment {
    const at = this.now();
    return this.db.transaction(() => {
      this.db
        .query(
          `INSERT INTO deployments (hash, path, name, state, manifest, error, generation, created_at, updated_at, ready_at, refs)
           VALUES ($hash, $path, $name, 'activating', $manifest, NULL, 1, $at, $at, NULL, $refs)
           ON CONFLICT (hash) DO UPDATE SET
             path = $path, name = $name, state = 'activating', manifest = $manifest, error = NULL,
             generation = generation + 1, updated_at = $at, ready_at = NULL, refs = $refs`,
        )
        .run({
          hash,
          path,
          name: manifest.name,
          manifest: JSON.stringify(manifest),
          at,
          refs: JSON.stringify(refs),
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

  markWanted(hash: string, reason: string): void {
    this.db.transaction(() => {
      const r = this.db
        .query("UPDATE deployments SET ever_wanted = 1 WHERE hash = ? AND ever_wanted = 0")
        .run(hash);
      if (r.changes > 0) this.insertEvent(hash, "wanted", reason, this.now());
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
