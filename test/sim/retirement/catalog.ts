/**
 * What the simulated users build: apps made of service chains (frontend -> backend, sometimes
 * three deep, sometimes a backend shared by two apps), each build a new store hash per rebuilt
 * service. A hash's references are a fact about the hash (Nix records them at build time), so
 * the catalog is the ground truth the members learn refs from.
 */

import { type Rng, randomFloat, randomInt } from "../../../src/lib/prng.ts";
import { fakeHash } from "../../support/gossip/fixtures.ts";

export interface Build {
  hash: string;
  service: string;
  /** the service hashes it references (its direct dependencies) */
  refs: string[];
  /** order of creation */
  serial: number;
}

export interface App {
  /** its alias ("prod", "admin", or "pr-<n>" for a preview of prod) */
  alias: string;
  /** service names, top first: chain[i] references chain[i + 1] */
  chain: string[];
  /** the hash of each service in this app's latest build */
  hashes: Map<string, string>;
}

export class Catalog {
  readonly builds = new Map<string, Build>();
  readonly apps: App[] = [];
  /** the last hash built of each service, by any app (same source, same hash) */
  private readonly latest = new Map<string, string>();
  private serial = 0;

  constructor(
    private readonly rng: Rng,
    /** distinguishes the hashes of one run from another's (they never meet; it reads better) */
    private readonly salt: number,
  ) {
    const deep = randomFloat(rng) < 0.5;
    this.apps.push(this.newApp("prod", deep ? ["web", "api", "db"] : ["web", "api"]));
    // A second app sharing prod's backend (its hashes are prod's until one of them rebuilds it).
    if (randomFloat(rng) < 0.6)
      this.apps.push(this.newApp("admin", ["admin", ...this.appOf("prod").chain.slice(1)]));
  }

  appOf(alias: string): App {
    const app = this.apps.find((a) => a.alias === alias);
    if (!app) throw new Error(`no app ${alias}`);
    return app;
  }

  refsOf = (hash: string): readonly string[] => this.builds.get(hash)?.refs ?? [];

  /** Every hash of an app's latest build, bottom first (the order a deploy activates them). */
  closure(app: App): string[] {
    return [...app.chain].reverse().map((s) => app.hashes.get(s) as string);
  }

  /** A hash and everything it references, transitively, bottom first. */
  closureOf(hash: string): string[] {
    const out: string[] = [];
    const visit = (h: string) => {
      if (out.includes(h)) return;
      for (const r of this.refsOf(h)) visit(r);
      out.push(h);
    };
    visit(hash);
    return out;
  }

  /**
   * Rebuild an app from level `from` of its chain (0 = the top only) upwards: every service from
   * there up gets a new hash, because its references changed; those below keep theirs. A shared
   * service rebuilt by another app is picked up half the time (the same source gives the same hash).
   */
  rebuild(app: App, from = randomInt(this.rng, app.chain.length)): string {
    for (let i = app.chain.length - 1; i >= 0; i--) {
      const service = app.chain[i] as string;
      const dep = app.chain[i + 1];
      const refs = dep === undefined ? [] : [app.hashes.get(dep) as string];
      if (i > from) {
        // Only just below the rebuilt part, so every hash above is rebuilt against it.
        const shared = i === from + 1 ? this.latest.get(service) : undefined;
        if (shared !== undefined && shared !== app.hashes.get(service) && randomFloat(this.rng) < 0.5) {
          if (sameRefs(this.refsOf(shared), refs)) app.hashes.set(service, shared);
        }
        continue;
      }
      app.hashes.set(service, this.build(service, refs));
    }
    return app.hashes.get(app.chain[0] as string) as string;
  }

  /** A preview of `base`: its top rebuilt, every hash below shared with it. */
  preview(base: App, alias: string): App {
    const app: App = { alias, chain: [...base.chain], hashes: new Map(base.hashes) };
    this.rebuild(app, 0);
    this.apps.push(app);
    return app;
  }

  dropApp(alias: string): void {
    const i = this.apps.findIndex((a) => a.alias === alias);
    if (i >= 0) this.apps.splice(i, 1);
  }

  /** A build picked with a bias to recent ones (old versions are called by hash URL too). */
  someBuild(): Build {
    const all = [...this.builds.values()];
    const n = all.length;
    const recent = Math.max(1, Math.min(n, 6));
    return (
      randomFloat(this.rng) < 0.7 ? all[n - 1 - randomInt(this.rng, recent)] : all[randomInt(this.rng, n)]
    ) as Build;
  }

  private newApp(alias: string, chain: string[]): App {
    const app: App = { alias, chain, hashes: new Map() };
    for (let i = chain.length - 1; i >= 0; i--) {
      const service = chain[i] as string;
      const known = this.latest.get(service);
      if (known !== undefined) app.hashes.set(service, known);
      else {
        const dep = chain[i + 1];
        app.hashes.set(
          service,
          this.build(service, dep === undefined ? [] : [app.hashes.get(dep) as string]),
        );
      }
    }
    return app;
  }

  private build(service: string, refs: string[]): string {
    const serial = this.serial++;
    const hash = fakeHash(this.salt * 10_000 + serial);
    this.builds.set(hash, { hash, service, refs, serial });
    this.latest.set(service, hash);
    return hash;
  }
}

const sameRefs = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((r, i) => r === b[i]);
