import { HashdError } from "../lib/errors.ts";
import type { Exec } from "../lib/exec.ts";
import type { StorePath } from "../nix/store-path.ts";
import { copyFailure, RemoteHashd } from "./remote.ts";
import {
  type AliasResult,
  type DeployResult,
  type HostError,
  type HostResult,
  type RemoteDeployment,
  type RolloutEnd,
  type Stage,
  summarize,
} from "./result.ts";
import { DEFAULT_SSH, destination, nixSshOpts, type SshOptions, type Target } from "./target.ts";

/** What a host's progress line shows. */
export type Phase = "waiting" | "connect" | "copy" | "activate" | "ready" | "failed" | "alias";

export interface ProgressSink {
  update(host: string, phase: Phase, detail?: string): void;
}

export interface DeployOptions {
  path: StorePath;
  targets: Target[];
  /** readiness wait on each target (`hashd activate --timeout`) */
  timeoutSec: number;
  alias?: string;
  /**
   * how the alias moves to the hash: at once (default), in a staged rollout (`hashd rollout start`
   * with these extra arguments) or guarded (`hashd alias set --guard`, the arguments after it)
   */
  aliasMode?: { kind: "set" } | { kind: "rollout"; args: string[] } | { kind: "guard"; args: string[] };
  /** after a rollout or guard started: wait until it ends (the first target is asked), polling this often */
  waitRollout?: { pollMs: number; timeoutMs: number };
  sleep?: (ms: number) => Promise<void>;
  installable?: string;
  exec: Exec;
  ssh?: SshOptions;
  progress?: ProgressSink;
  /** NIX_SSHOPTS the user set; ours are appended */
  inheritedNixSshOpts?: string;
  copyTimeoutMs?: number;
  now?: () => number;
}

const NIX_FLAGS = ["--extra-experimental-features", "nix-command"];

/**
 * Deploys one closure to every target in parallel: per host, one ssh call asks whether the store
 * has the path (and proves the host is reachable), `nix copy --to ssh-ng://` sends it when it
 * does not (the target's nix-daemon checks signatures), and `hashd activate --wait` over ssh
 * starts it and waits for readiness. A host that fails is reported with its stage and cause; the
 * others carry on and keep what they got (nothing is rolled back). The alias is switched only
 * when every target is ready. Never throws for a host's failure: the result says what happened.
 */
export async function deploy(o: DeployOptions): Promise<DeployResult> {
  const now = o.now ?? Date.now;
  const started = now();
  const ssh = o.ssh ?? DEFAULT_SSH;
  let localValid: Promise<boolean> | undefined;
  const ensureLocal = () => {
    localValid ??= o
      .exec(["nix-store", "--check-validity", o.path.path], { timeoutMs: 30_000 })
      .then((r) => r.code === 0);
    return localValid;
  };
  for (const t of o.targets) o.progress?.update(t.spec, "waiting");

  const hosts = await Promise.all(
    o.targets.map(async (target): Promise<HostResult> => {
      const hostStarted = now();
      const remote = new RemoteHashd(target, o.exec, ssh);
      let stage: Stage = "connect";
      const phase = (p: Phase, detail?: string) => o.progress?.update(target.spec, p, detail);
      try {
        phase("connect");
        const present = await remote.isValid(o.path.path);
        if (!present) {
          stage = "copy";
          phase("copy");
          if (!(await ensureLocal())) {
            throw new HashdError(
              "not_found",
              `${o.path.path} is in neither this machine's store nor ${target.spec}'s: build or fetch it here first`,
            );
          }
          await copy(o, target, ssh);
        }
        stage = "activate";
        phase("activate", present ? "in store" : "copied");
        const r = await remote.hashdJson<{ deployment: RemoteDeployment; existing: boolean }>(
          ["activate", o.path.path, "--wait", "--timeout", String(o.timeoutSec)],
          (o.timeoutSec + 60) * 1000,
        );
        if (r?.deployment?.hash !== o.path.hash) {
          throw new HashdError("internal", `${target.spec}: hashd activate answered for another hash`);
        }
        phase("ready", r.existing ? "already live" : undefined);
        return {
          host: target.spec,
          ok: true,
          copied: !present,
          existing: r.existing,
          durationMs: now() - hostStarted,
          deployment: r.deployment,
        };
      } catch (e) {
        const error = hostError(e, stage);
        phase("failed", `${stage}: ${error.message.split("\n")[0]}`);
        return { host: target.spec, ok: false, durationMs: now() - hostStarted, error };
      }
    }),
  );

  const alias = o.alias === undefined ? undefined : await switchAlias(o, o.alias, hosts, ssh);
  if (alias?.switched && o.waitRollout !== undefined && (o.aliasMode?.kind ?? "set") !== "set")
    alias.rollout = await waitForRollout(o, alias.name, ssh, o.waitRollout);
  return summarize({
    path: o.path.path,
    hash: o.path.hash,
    ...(o.installable ? { installable: o.installable } : {}),
    durationMs: now() - started,
    hosts,
    ...(alias ? { alias } : {}),
  });
}

async function copy(o: DeployOptions, target: Target, ssh: SshOptions): Promise<void> {
  const timeoutMs = o.copyTimeoutMs ?? 3_600_000;
  const r = await o.exec(
    ["nix", ...NIX_FLAGS, "copy", "--to", `ssh-ng://${destination(target)}`, o.path.path],
    {
      timeoutMs,
      env: { NIX_SSHOPTS: nixSshOpts(target, ssh, o.inheritedNixSshOpts ?? "") },
    },
  );
  if (r.code !== 0) throw copyFailure(target, o.path.path, r, timeoutMs);
}

/** `hashd alias set <name>=<hash>` on every target, once all of them are ready. */
async function switchAlias(
  o: DeployOptions,
  name: string,
  hosts: HostResult[],
  ssh: SshOptions,
): Promise<AliasResult> {
  const notReady = hosts.filter((h) => !h.ok).map((h) => h.host);
  if (notReady.length) {
    return { name, switched: false, skipped: `not ready on ${notReady.join(", ")}`, hosts: [] };
  }
  const results = await Promise.all(
    o.targets.map(async (target): Promise<AliasResult["hosts"][number]> => {
      o.progress?.update(target.spec, "alias");
      try {
        await new RemoteHashd(target, o.exec, ssh).hashdJson(aliasCommand(o, name));
        o.progress?.update(target.spec, "ready", `alias ${name}`);
        return { host: target.spec, ok: true };
      } catch (e) {
        const error = hostError(e, "alias");
        error.message += ` (${o.path.hash} is live there; alias ${name} was not switched)`;
        o.progress?.update(target.spec, "failed", `alias: ${error.message}`);
        return { host: target.spec, ok: false, error };
      }
    }),
  );
  return { name, switched: results.every((r) => r.ok), hosts: results };
}

/** The remote command that moves the alias: a plain set, a rollout start, or a guarded set. */
function aliasCommand(o: DeployOptions, name: string): string[] {
  const mode = o.aliasMode ?? { kind: "set" };
  const hash = o.path.hash;
  if (mode.kind === "rollout") return ["rollout", "start", name, hash, ...mode.args];
  if (mode.kind === "guard") return ["alias", "set", `${name}=${hash}`, "--guard", ...mode.args];
  return ["alias", "set", `${name}=${hash}`];
}

/**
 * Polls the first target's `hashd rollout status <alias>` until the rollout or guard is no longer
 * running or paused; its last view says how it ended. Errors on the way (a host briefly
 * unreachable) are retried until the time runs out.
 */
async function waitForRollout(
  o: DeployOptions,
  name: string,
  ssh: SshOptions,
  wait: { pollMs: number; timeoutMs: number },
): Promise<RolloutEnd> {
  const sleep = o.sleep ?? Bun.sleep;
  const now = o.now ?? Date.now;
  const until = now() + wait.timeoutMs;
  const target = o.targets[0] as Target;
  let last = "";
  for (;;) {
    try {
      const v = await new RemoteHashd(target, o.exec, ssh).hashdJson<{
        rollout: { status: string; note: string; to: string };
      }>(["rollout", "status", name]);
      last = v.rollout.note;
      const { status, to } = v.rollout;
      if (to === o.path.hash && status !== "running" && status !== "paused")
        return { status: status as RolloutEnd["status"], note: v.rollout.note };
    } catch (e) {
      last = (e as Error).message;
    }
    if (now() >= until) return { status: "timeout", note: last };
    o.progress?.update(target.spec, "alias", `rollout of ${name}: ${last}`);
    await sleep(wait.pollMs);
  }
}

function hostError(e: unknown, stage: Stage): HostError {
  if (e instanceof HashdError) return { code: e.code, message: e.message, stage };
  return { code: "internal", message: (e as Error)?.message ?? String(e), stage };
}
