import { HashdError } from "../lib/errors.ts";
import type { Nix } from "../nix/nix.ts";
import { parseStoreHash, parseStorePath } from "../nix/store-path.ts";
import { isProxied } from "../systemd/proxied-unit.ts";
import { installProxyHelpers, type ProxyHelpers } from "../systemd/proxy-helpers.ts";
import type { Systemctl } from "../systemd/systemctl.ts";
import { type HashUnits, hashUnits } from "../systemd/unit-names.ts";
import type { Config } from "./config.ts";
import { type HoldTokens, installHoldToken } from "./ingress/hold-tokens.ts";
import type { Manifest } from "./manifest.ts";
import { readManifest, serviceRefs } from "./read-manifest.ts";
import { startAndWaitReady } from "./readiness.ts";
import { type Deployment, LIVE_STATES } from "./state/deployment.ts";
import type { StateStore } from "./state/store.ts";

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
 * Every unit of a hash: the socket + service pair, and in the proxied modes (unix, port) the
 * program's own unit and the timer that creates it (normally gone within the creating call).
 */
export function unitsOf(units: HashUnits, manifest: Manifest): string[] {
  return isProxied(manifest)
    ? [units.socket, units.service, units.app, units.appTimer]
    : [units.socket, units.service];
}

/**
 * The activation pipeline: validate, fetch (nix copy), read the manifest, GC root, transient
 * socket + service pair, readiness. Refused input changes nothing: the deployment row is written
 * only once the closure is in the store and its manifest is valid.
 */
export class Activator {
  /** one pipeline per hash at a time; concurrent calls for the same hash share it */
  private readonly running = new Map<string, Promise<Deployment>>();
  private readonly readiness = new Map<string, Promise<Deployment>>();
  private readonly stopping = new Set<string>();
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
    const existing = this.deps.store.get(hash);
    if (existing && LIVE_STATES.has(existing.state) && !req.force && !this.running.has(hash)) {
      if (existing.path !== path) {
        throw new HashdError("conflict", `hash ${hash} is live as ${existing.path}, not ${path}`);
      }
      const deployment = req.wait ? await this.waitFor(existing, req.timeoutMs) : existing;
      return { deployment, existing: true };
    }
    let pipeline = this.running.get(hash);
    const joined = pipeline !== undefined;
    if (!pipeline) {
      pipeline = this.pipeline(path, hash, req).finally(() => this.running.delete(hash));
      this.running.set(hash, pipeline);
    }
    const deployment = await pipeline;
    return {
      deployment: req.wait ? await this.waitFor(deployment, req.timeoutMs) : deployment,
      existing: joined,
    };
  }

  private async pipeline(path: string, hash: string, req: ActivateRequest): Promise<Deployment> {
    const { store, nix, log } = this.deps;
    await this.ensureInStore(path, req.substituter);
    const [manifest, refs] = await Promise.all([
      (this.deps.readManifest ?? readManifest)(path),
      (this.deps.serviceRefs ?? serviceRefs)(this.deps.nix, path),
    ]);
    const units = this.units(hash);
    // Units of a failed or forced hash go first: systemd-run can't replace them. A hash the
    // database has never seen has none, which saves two systemctl calls on the common path.
    if (this.deps.store.get(hash)) await this.removeUnits(units, manifest);
    await nix.addGcRoot(path);
    const reason = req.force ? "activate --force" : "activate";
    const deployment = store.beginActivation(path, hash, manifest, reason, refs);
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
      if (!(e instanceof HashdError && /already exists/.test(e.message))) throw e;
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
    };
    if (isProxied(manifest)) {
      await this.deps.systemctl.createProxied({ ...spec, helpers: this.proxyHelpers() });
    } else {
      await this.deps.systemctl.createTransient(spec);
    }
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
    this.stopping.add(hash);
    try {
      await this.stopUnits(d);
      await this.deps.nix.removeGcRoot(hash);
      return this.transition(d, "retired", "deactivated");
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
