import { type ErrorCode, HashdError } from "../lib/errors.ts";

/** Where on a host a deploy failed. `connect` is the first ssh call (the store check). */
export type Stage = "connect" | "copy" | "activate" | "alias";

export interface HostError {
  code: ErrorCode;
  message: string;
  stage: Stage;
}

/** The deployment as the target's agent reported it (`hashd activate --json`). */
export interface RemoteDeployment {
  hash: string;
  name: string;
  state: string;
  url: string;
  path: string;
  socketPath?: string;
  [key: string]: unknown;
}

export type HostResult =
  | {
      host: string;
      ok: true;
      /** false when the target had the closure already (no copy) */
      copied: boolean;
      /** true when the hash was already live there: nothing was touched */
      existing: boolean;
      durationMs: number;
      deployment: RemoteDeployment;
    }
  | { host: string; ok: false; durationMs: number; error: HostError };

export interface AliasResult {
  name: string;
  /** true once every target points the alias at the hash */
  switched: boolean;
  /** why nothing was switched (a target is not ready) */
  skipped?: string;
  hosts: ({ host: string; ok: true } | { host: string; ok: false; error: HostError })[];
  /** with --rollout/--guard and --wait: how the rollout or guard ended */
  rollout?: RolloutEnd;
}

/** How a rollout or guard that `deploy --wait` waited for ended. */
export interface RolloutEnd {
  status: "done" | "aborted" | "timeout";
  /** its last decision, with the numbers */
  note: string;
}

export interface DeployResult {
  ok: boolean;
  path: string;
  hash: string;
  /** the hash URL as the first ready target reports it (null when none is ready) */
  url: string | null;
  /** the installable built into `path`, when one was given */
  installable?: string;
  durationMs: number;
  hosts: HostResult[];
  alias?: AliasResult;
  /** when not ok: the code the exit code comes from and a one-line summary */
  error?: { code: ErrorCode; message: string };
}

/**
 * The overall outcome. Exit code: that of the first failing host in `--to` order (so the same
 * failure gives the same code whichever host is slower); deploy failures come before alias ones.
 */
export function summarize(r: Omit<DeployResult, "ok" | "error" | "url">): DeployResult {
  const ready = r.hosts.find((h) => h.ok);
  const url = ready?.ok ? ready.deployment.url : null;
  const failures: { host: string; error: HostError }[] = [
    ...r.hosts.flatMap((h) => (h.ok ? [] : [{ host: h.host, error: h.error }])),
    ...(r.alias?.hosts ?? []).flatMap((h) => (h.ok ? [] : [{ host: h.host, error: h.error }])),
  ];
  const first = failures[0];
  const end = r.alias?.rollout;
  if (!first && end !== undefined && end.status !== "done") {
    const code = end.status === "aborted" ? "rollout_aborted" : "timeout";
    const message = `the rollout of ${r.alias?.name} to ${r.hash} ${end.status === "aborted" ? "was aborted" : "did not end in time"}: ${end.note}`;
    return { ...r, ok: false, url, error: { code, message } };
  }
  if (!first) return { ...r, ok: true, url };
  const failedHosts = new Set(failures.map((f) => f.host)).size;
  const lines = failures.map((f) => `  ${describeFailure(f.host, f.error)}`);
  const deployed = r.hosts.filter((h) => h.ok).map((h) => h.host);
  const tail = deployed.length ? `\n  deployed and left as they are: ${deployed.join(", ")}` : "";
  const aliasNote = r.alias?.skipped ? `\n  alias ${r.alias.name} not switched: ${r.alias.skipped}` : "";
  const message =
    `deploy of ${r.hash} failed on ${failedHosts} of ${r.hosts.length} host(s)` +
    (failures.length > 1 ? ` (exit code from the first, ${first.host}: ${first.error.code})` : "") +
    `:\n${lines.join("\n")}${tail}${aliasNote}`;
  return { ...r, ok: false, url, error: { code: first.error.code, message } };
}

export function describeFailure(host: string, e: HostError): string {
  return `${host}: ${e.stage} failed (${e.code}): ${e.message.replace(/\n/g, "\n    ")}`;
}

/** The HashdError main() turns into the exit code and the stderr line; undefined when all went well. */
export function failureOf(r: DeployResult): HashdError | undefined {
  return r.error ? new HashdError(r.error.code, r.error.message) : undefined;
}

/** The human summary printed at the end on a terminal (the JSON result holds the same). */
export function renderText(r: DeployResult): string {
  const width = Math.max(...r.hosts.map((h) => h.host.length));
  const lines = [`${r.ok ? "deployed" : "deploy failed"}: ${r.path}`];
  if (r.url) lines.push(`  url: ${r.url}`);
  for (const h of r.hosts) {
    const name = h.host.padEnd(width);
    if (h.ok) {
      const how = h.existing
        ? "already live, nothing touched"
        : h.copied
          ? "copied, activated"
          : "in store, activated";
      lines.push(`  ${name}  ${h.deployment.state.padEnd(8)} ${seconds(h.durationMs)}  (${how})`);
    } else {
      lines.push(`  ${name}  failed   ${seconds(h.durationMs)}  at ${h.error.stage} (${h.error.code})`);
    }
  }
  if (r.alias) {
    const a = r.alias;
    lines.push(
      a.switched
        ? `  alias ${a.name} -> ${r.hash} on ${a.hosts.length} host(s)`
        : `  alias ${a.name} not switched${a.skipped ? `: ${a.skipped}` : ""}`,
    );
  }
  lines.push(`  took ${seconds(r.durationMs)}`);
  return lines.join("\n");
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
}
