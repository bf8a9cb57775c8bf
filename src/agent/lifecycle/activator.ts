import { HashdError } from "../../lib/errors.ts";
import type { Config } from "../../model/config.ts";
import { type Deployment, LIVE_STATES } from "../../model/deployment.ts";
import type { Manifest } from "../../model/manifest.ts";
import type { Nix } from "../../nix/nix.ts";
import { parseStoreHash, parseStorePath } from "../../nix/store-path.ts";
import { isProxied, unitsOf } from "../../systemd/proxied-unit.ts";
import { installProxyHelpers, type ProxyHelpers } from "../../systemd/proxy-helpers.ts";
import type { UnitCredential } from "../../systemd/service-identity.ts";
import { type Systemctl, SystemdRunError } from "../../systemd/systemctl.ts";
import { type HashUnits, hashUnits } from "../../systemd/unit-names.ts";
import { type HoldTokens, installHoldToken } from "../holds/hold-tokens.ts";
import type { StateStore } from "../state/store.ts";
import { hashCredentials } from "./credentials.ts";
import { readManifest, serviceRefs } from "./read-manifest.ts";
import { startAndWaitReady } from "./readiness.ts";
import { type RestartDrain, type RestartResult, restartHash } from "./restart.ts";

export interface ActivateRequest {
  path: string;
  /** wait for readiness; otherwise return once the units exist */
  wait?: boolean;
  timeoutMs?: number;
  /** recreate the units even if the hash is live */
  force?: boolean;
  /** create the socket only; the service starts on the first connection */
  lazy?: boolean;
  /** copy from here if the path is missing (else the configured substituters, in order) */
  substituter?: string;
  /**
   * Set when the agent itself activates a hash because it is wanted again (the reason): it keeps
   * its wanted marks. Without it, the activation is by hand: a fresh deployment, kept until an
   * alias or pin wants it (see StateStore.beginActivation).
   */
  wanted?: string;
}

/** An activation under way, before its deployment row exists. */
export interface PendingActivation {
  hash: string;
  /** the service hashes it references; null until read (the closure may still be copying) */
  refs: string[] | null;
}

export interface ActivateResult {
  deployment: Deployment;
  /** true when the hash was already live and nothing was touched */
  existing: boolean;
}

export interface ActivatorDeps {
  config: Config;
  socketDir: string;
  store: StateStore;
  systemctl: Systemctl;
  nix: Nix;
  log: (msg: string) => void;
  /** called whenever a deployment's state changed (ingress routes, gossip) */
  onChange?: (d: Deployment) => void;
  /** called when an activation under way has read its references (the report changes) */
  onActivations?: () => void;
  /** the service hashes a closure references (a fake in unit tests) */
  serviceRefs?: (nix: Nix, path: string) => Promise<string[]>;
  /** reads and validates the manifest of a closure in the store (a fake in unit tests) */
  readManifest?: (path: string) => Promise<Manifest>;
  /** finds systemd-socket-proxyd and the upstream waiter (default: installProxyHelpers) */
  proxyHelpers?: () => ProxyHelpers;
  /** each service's token for the holds API, bind-mounted into its units (the agent always has
   * one; unit tests on a fake host leave it out, and their services get no token) */
  holdTokens?: HoldTokens;
}

/**
 * The activation pipeline: validate, fetch (nix copy), read the manifest, GC root, transient
 * socket + service pair, readiness. Refused input changes nothing: the deployment row is written
 * only once the closure is in the store and its manifest is valid.
 */
export class Activator {
  /** one pipeline per hash at a time; concurrent calls for the same hash share it */
  private readonly running = new Map<string, Promise<Deployment>>();
  /** the pipelines of `running` that have not written their deployment row yet */
  private readonly pending = new Map<string, string[] | null>();
  private readonly readiness = new Map<string, Promise<Deployment>>();
  /** hashes whose units are being stopped (deactivate, retirement), until their row says so */
  private readonly stopping = new Map<string, Promise<unknown>>();
  private helpers: ProxyHelpers | undefined;

  constructor(private readonly deps: ActivatorDeps) {}

  units(hash: string): HashUnits {
    return hashUnits(hash, this.deps.socketDir);
  }

  url(hash: string): string {
    return `http://${hash}.${this.deps.config.zone}/`;
  }

  async activate(req: ActivateRequest): Promise<ActivateResult> {
    const { path, hash } = parseStorePath(req.path);
    // A stop under way (a retirement that raced this call) ends first; the hash is then retired
    // and is activated again below. From here to `running.set`, nothing awaits.
    while (this.stopping.has(hash)) await this.stopping.get(hash)?.catch(() => {});
    const existing = this.deps.store.get(hash);
    const live = existing !== undefined && LIVE_STATES.has(existing.state);
    if (existing && live && !this.running.has(hash)) {
      if (existing.path !== path && !req.force) {
        throw new HashdError("conflict", `hash ${hash} is live as ${existing.path}, not ${path}`);
      }
      if (!req.force && (existing.state !== "draining" || req.wanted)) {
        const deployment = req.wait ? await this.waitFor(existing, req.timeoutMs) : existing;
        return { deployment, existing: true };
      }
    }
    let pipeline = this.running.get(hash);
    const joined = pipeline !== undefined;
    if (!pipeline) {
      // a draining hash activated again is brought back (its units stay); else the pipeline
      const work = existing && live && !req.force ? this.undrain(existing) : this.pipeline(path, hash, req);
      pipeline = work.finally(() => this.running.delete(hash));
      this.running.set(hash, pipeline);
    }
    const deployment = await pipeline;
    return {
      deployment: req.wait ? await this.waitFor(deployment, req.timeoutMs) : deployment,
      existing: joined || (live && !req.force),
    };
  }

  /**
   * Activating a draining hash brings it back (dedup still touches no unit): ready or idle as
   * its service runs, and a fresh deployment again (kept until an alias or pin wants it), so a
   * new dependent deployed next can't lose it half-installed.
   */
  private async undrain(d: Deployment): Promise<Deployment> {
    const units = this.units(d.hash);
    const props = await this.deps.systemctl.show([units.service], ["ActiveState"]);
    const state = props.get(units.service)?.ActiveState === "active" ? "ready" : "idle";
    const next = this.deps.store.undrainByHand(
      d.hash,
      d.generation,
      state,
      "activated again while draining: back in service, kept until an alias or pin wants it",
    );
    if (!next) return this.deps.store.get(d.hash) ?? d;
    this.changed(next);
    return next;
  }

  /**
   * Activations under way whose deployment row is not written yet (the closure is being copied,
   * or its manifest read): reported as "fetching" with their references once read, so that
   * what they reference is not retired under them here or on any member.
   */
  activations(): PendingActivation[] {
    return [...this.pending].map(([hash, refs]) => ({ hash, refs: refs && [...refs] }));
  }

  private async pipeline(path: string, hash: string, req: ActivateRequest): Promise<Deployment> {
    this.pending.set(hash, null);
    try {
      return await this.stages(path, hash, req);
    } finally {
      this.pending.delete(hash);
    }
  }

  private async stages(path: string, hash: string, req: ActivateRequest): Promise<Deployment> {
    const { store, nix, log } = this.deps;
    await this.ensureInStore(path, req.substituter);
    const [manifest, refs] = await Promise.all([
      (this.deps.readManifest ?? readManifest)(path),
      (this.deps.serviceRefs ?? serviceRefs)(this.deps.nix, path).then((refs) => {
        if (this.pending.has(hash)) this.pending.set(hash, refs);
        this.deps.onActivations?.();
        return refs;
      }),
    ]);
    // A credential this host lacks refuses the activation here, before any unit, GC root or row.
    await this.credentials(manifest);
    const units = this.units(hash);
    // Units of a failed or forced hash go first: systemd-run can't replace them. A hash the
    // database has never seen has none, which saves two systemctl calls on the common path.
    if (this.deps.store.get(hash)) await this.removeUnits(units, manifest);
    await nix.addGcRoot(path);
    const reason = req.wanted
      ? `activated again by the agent: ${req.wanted}`
      : req.force
        ? "activate --force"
        : "activate";
    const deployment = store.beginActivation(path, hash, manifest, reason, refs, !req.wanted);
    this.pending.delete(hash);
    this.changed(deployment);
    try {
      await this.createUnits(path, units, manifest);
    } catch (e) {
      const failed = store.transition(hash, deployment.generation, "failed", "units refused", String(e));
      if (failed) this.changed(failed);
      throw e;
    }
    log(`activated ${hash} (${manifest.name}) at ${units.socketPath}`);
    if (req.lazy) {
      return this.transition(deployment, "idle", "socket listening; service starts on first connection");
    }
    this.checkReadiness(deployment);
    return deployment;
  }

  private async removeUnits(units: HashUnits, manifest: Manifest): Promise<void> {
    const all = unitsOf(units, manifest);
    await this.deps.systemctl.stop(all);
    await this.deps.systemctl.resetFailed(all);
  }

  async createUnits(path: string, units: HashUnits, manifest: Manifest): Promise<void> {
    try {
      await this.createTransient(path, units, manifest);
    } catch (e) {
      // Units left by an agent whose database was lost: replace them once.
      if (!(e instanceof SystemdRunError && e.unitExists)) throw e;
      this.deps.log(`replacing stale units of ${units.hash}`);
      await this.removeUnits(units, manifest);
      await this.createTransient(path, units, manifest);
    }
  }

  private async createTransient(path: string, units: HashUnits, manifest: Manifest): Promise<void> {
    const { holdTokens, config } = this.deps;
    const token = holdTokens ? installHoldToken(holdTokens, config.runtimeDir, units.hash) : undefined;
    const spec = {
      units,
      storePath: path,
      manifest,
      ...(this.deps.config.serviceUser ? { user: this.deps.config.serviceUser } : {}),
      agentEnvironment: {
        HASHD_HASH: units.hash,
        HASHD_ZONE: this.deps.config.zone,
        HASHD_URL: this.url(units.hash),
        // Where a service reaches other hashes (the local ingress) and its holds API.
        HASHD_INGRESS: `${loopbackOf(this.deps.config.ingress.address)}:${this.deps.config.ingress.port}`,
        HASHD_AGENT_SOCKET: `${this.deps.config.runtimeDir}/service.sock`,
        ...(token ? { HASHD_HOLD_TOKEN_FILE: token.target } : {}),
      },
      bindReadOnly: token ? [token] : [],
      credentials: await this.credentials(manifest),
    };
    if (isProxied(manifest)) {
      await this.deps.systemctl.createProxied({ ...spec, helpers: this.proxyHelpers() });
    } else {
      await this.deps.systemctl.createTransient(spec);
    }
  }

  /**
   * The files of the credentials a manifest names, as this host maps them, checked
   * (lifecycle/credentials.ts): a refusal is `missing_credential` and changes nothing.
   */
  credentials(manifest: Manifest): Promise<UnitCredential[]> {
    return hashCredentials(this.deps.config, manifest);
  }

  /**
   * Stops and starts a live hash's program, its socket kept, after the ingress drained its requests
   * (lifecycle/restart.ts): `hashd restart`, so that it reads rotated credential files.
   */
  async restart(hashInput: string, drain: RestartDrain): Promise<RestartResult> {
    const { store, systemctl, log, onChange } = this.deps;
    return await restartHash(
      {
        store,
        systemctl,
        units: (h) => this.units(h),
        credentials: (m) => this.credentials(m),
        whileBusy: (h, work) => this.whileStopping(h, work),
        log,
        ...(onChange ? { onChange } : {}),
      },
      parseStoreHash(hashInput),
      drain,
    );
  }

  /**
   * systemd-socket-proxyd and the upstream waiter, resolved once per agent process (a missing
   * proxyd is an error for proxied hashes only, and is looked for again next time).
   */
  proxyHelpers(): ProxyHelpers {
    this.helpers ??= (
      this.deps.proxyHelpers ?? (() => installProxyHelpers(`${this.deps.config.runtimeDir}/bin`))
    )();
    return this.helpers;
  }

  /** Starts the service and records ready or failed; one check per hash and generation. */
  checkReadiness(deployment: Deployment): Promise<Deployment> {
    const key = `${deployment.hash}:${deployment.generation}`;
    const current = this.readiness.get(key);
    if (current) return current;
    const { systemctl } = this.deps;
    const units = this.units(deployment.hash);
    const check = (async () => {
      const timeoutMs = deployment.manifest.startTimeoutSec * 1000;
      const r = await startAndWaitReady(systemctl, units, deployment.manifest, timeoutMs);
      if (r.ok)
        return this.transition(
          deployment,
          "ready",
          `readiness (${deployment.manifest.readiness.type}) holds`,
        );
      const proxied = isProxied(deployment.manifest);
      const logged = proxied ? [units.app, units.service] : [units.service];
      const journal = await systemctl.journal(proxied ? logged : units.service, 20);
      await systemctl.stop(unitsOf(units, deployment.manifest)).catch(() => {});
      const error = `${r.reason}${journal ? `\n--- last lines of ${logged.join(", ")} ---\n${journal}` : ""}`;
      return this.transition(deployment, "failed", r.reason, error);
    })().finally(() => this.readiness.delete(key));
    this.readiness.set(key, check);
    return check;
  }

  /** Whether an activation or deactivation of this hash is under way (the loops leave it alone). */
  isBusy(hash: string): boolean {
    return this.running.has(hash) || this.stopping.has(hash);
  }

  /** Stops every unit of a deployment (socket, service and, when proxied, the program's unit). */
  async stopUnits(d: Deployment): Promise<void> {
    await this.deps.systemctl.stop(unitsOf(this.units(d.hash), d.manifest));
  }

  async deactivate(hashInput: string): Promise<Deployment> {
    const hash = parseStoreHash(hashInput);
    const d = this.deps.store.get(hash);
    if (!d) throw new HashdError("not_found", `hash ${hash} is not known on this host`);
    return this.whileStopping(hash, async () => {
      await this.stopUnits(d);
      await this.deps.nix.removeGcRoot(hash);
      const next = this.deps.store.retireByHand(d.hash, d.generation, "deactivated");
      if (!next) return this.deps.store.get(d.hash) ?? d;
      this.changed(next);
      return next;
    });
  }

  /**
   * Runs a stop of a hash's units (deactivate, the retirer's retirement) with the hash busy: the
   * loops leave it alone, and an activation that arrives meanwhile waits for the stop to end
   * (and then activates it again), so it never undrains a hash whose units are going.
   */
  async whileStopping<T>(hash: string, stop: () => Promise<T>): Promise<T> {
    while (this.stopping.has(hash)) await this.stopping.get(hash)?.catch(() => {});
    const run = stop();
    this.stopping.set(hash, run);
    try {
      return await run;
    } finally {
      this.stopping.delete(hash);
    }
  }

  private transition(d: Deployment, state: Deployment["state"], message: string, error?: string): Deployment {
    const next = this.deps.store.transition(d.hash, d.generation, state, message, error ?? null);
    if (!next) return this.deps.store.get(d.hash) ?? d; // a newer generation took over
    this.changed(next);
    return next;
  }

  private changed(d: Deployment): void {
    this.deps.onChange?.(d);
  }

  /** Waits for the readiness check of a deployment; a failed check is an error with the journal. */
  private async waitFor(
    d: Deployment,
    timeoutMs = this.deps.config.readyTimeoutSec * 1000,
  ): Promise<Deployment> {
    if (d.state === "ready" || d.state === "idle") return d;
    if (d.state === "failed") throw failure(d);
    const check =
      this.readiness.get(`${d.hash}:${d.generation}`) ?? Promise.resolve(this.deps.store.get(d.hash) ?? d);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const result = await Promise.race([check, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      throw new HashdError("timeout", `hash ${d.hash} not ready within ${Math.round(timeoutMs / 1000)} s`, {
        state: this.deps.store.get(d.hash)?.state,
      });
    }
    if (result.state === "failed") throw failure(result);
    return result;
  }

  private async ensureInStore(path: string, substituter?: string): Promise<void> {
    const { nix, config, log } = this.deps;
    if (await nix.isValid(path)) return;
    const sources = substituter ? [substituter] : config.substituters;
    if (sources.length === 0) {
      throw new HashdError("not_found", `${path} is not in the local store and no substituter is configured`);
    }
    const errors: string[] = [];
    for (const source of sources) {
      try {
        log(`copying ${path} from ${source}`);
        await nix.copyFrom(source, path);
        return;
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    throw new HashdError("nix_failed", errors.join("; "));
  }
}

function failure(d: Deployment): HashdError {
  return new HashdError(
    "systemd_failed",
    `hash ${d.hash} (${d.name}) failed: ${d.error ?? "unknown error"}`,
    {
      deployment: d,
    },
  );
}

/** The address a process on this host uses to reach a listener bound to `address`. */
function loopbackOf(address: string): string {
  if (address === "0.0.0.0") return "127.0.0.1";
  if (address === "::") return "[::1]";
  return address.includes(":") ? `[${address}]` : address;
}
