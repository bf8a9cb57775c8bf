/**
 * What the page shows, worked out from a StatusSnapshot before any markup: services with their
 * versions (grouped, ordered, tagged with aliases, folded), alias closures, the incident strip,
 * and reasons with their hashes named. Pure functions, unit-tested in view.test.ts.
 */
import { isStoreHash } from "../../model/names.ts";
import { type NodeState, nodeState } from "./graph-svg.ts";
import type { StatusAlias, StatusHash, StatusMember, StatusSnapshot } from "./types.ts";

/**
 * The one short form of a hash on the page: 12 nix-base32 characters (60 bits). Short enough to
 * read and say aloud, long enough that two hashes of one cluster never share it (a collision
 * among 10,000 hashes has odds of about 1 in 10^10), and the form `hashd ls` prints.
 */
export const SHORT = 12;
export const short = (hash: string): string => hash.slice(0, SHORT);

/** prod first, then staging, then other names, preview aliases (pr-N) last in number order. */
export function aliasRank(name: string): number {
  if (name === "prod" || name === "production") return 0;
  if (name === "staging") return 1;
  return /^pr-\d+$/.test(name) ? 3 : 2;
}

export function compareAliases(a: { name: string }, b: { name: string }): number {
  const ra = aliasRank(a.name);
  const rb = aliasRank(b.name);
  if (ra !== rb) return ra - rb;
  if (ra === 3) return Number(a.name.slice(3)) - Number(b.name.slice(3));
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export const isPreview = (alias: string): boolean => aliasRank(alias) === 3;

/** Every hash an alias sends requests to: its split's, else its hash. */
export function aliasTargets(a: Pick<StatusAlias, "hash" | "split">): string[] {
  if (a.split?.length) return a.split.map((t) => t.hash);
  return a.hash === null ? [] : [a.hash];
}

/** Hashes reached from `roots` through references (the roots included), with their distance. */
export function closureOf(
  roots: readonly string[],
  refsOf: (hash: string) => readonly string[],
): Map<string, number> {
  const dist = new Map<string, number>();
  let frontier = [...new Set(roots)];
  for (let d = 0; frontier.length; d++) {
    const next: string[] = [];
    for (const h of frontier) {
      if (dist.has(h)) continue;
      dist.set(h, d);
      for (const r of refsOf(h)) if (!dist.has(r)) next.push(r);
    }
    frontier = next;
  }
  return dist;
}

export interface VersionView {
  entry: StatusHash;
  state: NodeState;
  /** aliases that point at this hash, prod first */
  aliases: string[];
  /** aliases whose closure reaches this hash through references (not pointing at it) */
  reachedBy: string[];
  /** folded away by default: retired, or reached by preview aliases only */
  fold?: "retired" | "preview";
}

export interface ServiceView {
  /** the service name, "(unnamed)" for hashes no member names */
  name: string;
  versions: VersionView[];
  /** 0 = prod points here, 1 = staging, 2 = reached by prod, 3 = by staging, 4 = another alias, 5 = none, 6 = all folded */
  rank: number;
  /** references from prod's root to the closest version (for ordering a chain top-down) */
  depth: number;
  /** every alias that points at one of its versions, in alias order */
  aliases: string[];
  /** the services its shown versions call */
  calls: string[];
}

export const UNNAMED = "(unnamed)";

interface AliasIndex {
  direct: Map<string, string[]>;
  reached: Map<string, string[]>;
  prodDepth: Map<string, number>;
}

function indexAliases(s: StatusSnapshot, refsOf: (h: string) => readonly string[]): AliasIndex {
  const direct = new Map<string, string[]>();
  const reached = new Map<string, string[]>();
  let prodDepth = new Map<string, number>();
  for (const a of [...s.aliases].sort(compareAliases)) {
    const targets = aliasTargets(a);
    for (const t of targets) direct.set(t, [...(direct.get(t) ?? []), a.name]);
    const closure = closureOf(targets, refsOf);
    if (a.name === "prod" || (prodDepth.size === 0 && aliasRank(a.name) === 0)) prodDepth = closure;
    for (const h of closure.keys()) {
      if (targets.includes(h)) continue;
      const list = reached.get(h) ?? [];
      if (!list.includes(a.name)) reached.set(h, [...list, a.name]);
    }
  }
  return { direct, reached, prodDepth };
}

const STATE_ORDER: readonly NodeState[] = [
  "failed",
  "ready",
  "activating",
  "fetching",
  "idle",
  "draining",
  "unknown",
  "retired",
];

/**
 * One group per service. Services prod points at come first, then staging's, then what prod and
 * staging reach (nearest first), then other aliases', then the rest; services whose versions are
 * all folded go last. Inside a service: aliased versions first (prod first), then by state
 * (failed first: it needs eyes), then the newest deploy.
 */
export function groupServices(s: StatusSnapshot): ServiceView[] {
  let memo = grouped.get(s);
  if (!memo) {
    memo = group(s);
    grouped.set(s, memo);
  }
  return memo;
}

/** one grouping per snapshot: the page, the graph and the strip all ask for it */
const grouped = new WeakMap<StatusSnapshot, ServiceView[]>();

function group(s: StatusSnapshot): ServiceView[] {
  const byHash = new Map(s.hashes.map((h) => [h.hash, h]));
  const refsOf = (h: string) => byHash.get(h)?.refs ?? [];
  const idx = indexAliases(s, refsOf);
  const groups = new Map<string, VersionView[]>();
  for (const h of s.hashes) {
    const state = nodeState(h);
    const aliases = idx.direct.get(h.hash) ?? [];
    const reachedBy = idx.reached.get(h.hash) ?? [];
    const all = [...aliases, ...reachedBy];
    const trouble = state === "failed" || state === "draining";
    const fold =
      state === "retired" && aliases.length === 0
        ? ("retired" as const)
        : !trouble && all.length > 0 && all.every(isPreview)
          ? ("preview" as const)
          : undefined;
    const v: VersionView = { entry: h, state, aliases, reachedBy, ...(fold ? { fold } : {}) };
    const name = h.name ?? UNNAMED;
    groups.set(name, [...(groups.get(name) ?? []), v]);
  }
  const services: ServiceView[] = [];
  for (const [name, versions] of groups) {
    versions.sort(compareVersions);
    const aliases = [...new Set(versions.flatMap((v) => v.aliases))].sort((a, b) =>
      compareAliases({ name: a }, { name: b }),
    );
    const reached = new Set(versions.filter((v) => !v.fold).flatMap((v) => v.reachedBy));
    const rank = aliases.includes("prod")
      ? 0
      : aliases.includes("staging")
        ? 1
        : reached.has("prod")
          ? 2
          : reached.has("staging")
            ? 3
            : aliases.some((a) => !isPreview(a))
              ? 4
              : versions.every((v) => v.fold)
                ? 6
                : 5;
    const depth = Math.min(...versions.map((v) => idx.prodDepth.get(v.entry.hash) ?? 99));
    const calls = [
      ...new Set(
        versions
          .filter((v) => !v.fold)
          .flatMap((v) => v.entry.refs.map((r) => byHash.get(r)?.name ?? UNNAMED))
          .filter((n) => n !== name),
      ),
    ].sort();
    services.push({ name, versions, rank, depth, aliases, calls });
  }
  return services.sort(
    (a, b) =>
      a.rank - b.rank ||
      a.depth - b.depth ||
      (a.name === UNNAMED ? 1 : 0) - (b.name === UNNAMED ? 1 : 0) ||
      cmp(a.name, b.name),
  );
}

function compareVersions(a: VersionView, b: VersionView): number {
  const fa = a.fold ? 1 : 0;
  const fb = b.fold ? 1 : 0;
  if (fa !== fb) return fa - fb;
  const aa = versionRank(a);
  const ab = versionRank(b);
  return (
    aa - ab ||
    STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state) ||
    deployTime(b.entry) - deployTime(a.entry) ||
    cmp(a.entry.hash, b.entry.hash)
  );
}

/** Pointed at by prod 0, staging 1, other 2, preview 3; reached by them 4 to 7; else 9. */
const versionRank = (v: VersionView): number =>
  Math.min(9, ...v.aliases.map(aliasRank), ...v.reachedBy.map((a) => 4 + aliasRank(a)));

export const deployTime = (h: StatusHash): number => h.deployedAt ?? h.updatedAt;

export interface Incidents {
  /** members that are suspect, dead or left */
  down: StatusMember[];
  failed: { hash: string; name: string; line: string }[];
  draining: { hash: string; name: string; why: string }[];
}

export function incidents(s: StatusSnapshot): Incidents {
  const down = s.members.filter((m) => m.state !== "alive");
  const failed: Incidents["failed"] = [];
  const draining: Incidents["draining"] = [];
  for (const h of s.hashes) {
    const st = nodeState(h);
    const name = h.name ?? UNNAMED;
    if (st === "failed") {
      failed.push({ hash: h.hash, name, line: firstErrorLine(h.error ?? h.verdict ?? "") });
    } else if (st === "draining") {
      draining.push({ hash: h.hash, name, why: h.verdict ?? "" });
    }
  }
  return { down, failed, draining };
}

/**
 * The line of an error that says what went wrong: the first journal line that mentions an error
 * (a failed unit's first line is often only "exited with status 1"), else the first line.
 */
export function firstErrorLine(error: string): string {
  const lines = error.split("\n").filter((l) => l.trim());
  const telling = lines.slice(1).find((l) => /error|fatal|panic|cannot|refused|denied|missing/i.test(l));
  const first = lines[0] ?? "";
  return telling && telling !== first ? `${first}: ${telling.trim()}` : first;
}

export type ReasonPart = string | { hash: string; name: string | null };

const HASH_IN_TEXT = /\b[0-9a-df-np-sv-z]{32}\b/g;

/** A reason split around the store hashes in it, each hash with the service name it has. */
export function reasonParts(text: string, nameOf: (hash: string) => string | null): ReasonPart[] {
  const parts: ReasonPart[] = [];
  let at = 0;
  for (const m of text.matchAll(HASH_IN_TEXT)) {
    const hash = m[0];
    if (!isStoreHash(hash)) continue;
    if (m.index > at) parts.push(text.slice(at, m.index));
    parts.push({ hash, name: nameOf(hash) });
    at = m.index + hash.length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
