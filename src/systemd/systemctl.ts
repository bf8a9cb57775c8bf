import { HashdError } from "../lib/errors.ts";
import { exec as defaultExec, type Exec, lastLine } from "../lib/exec.ts";
import { appRunArgv, type ProxiedUnitSpec, proxyRunArgv } from "./proxied-unit.ts";
import { systemdRunArgv, type TransientUnitSpec } from "./transient-unit.ts";

export type UnitProperties = Record<string, string>;

/**
 * systemd-run's error for a unit name that is taken: systemd answers the D-Bus error
 * org.freedesktop.systemd1.UnitExists, and systemd-run prints only its message: "Failed to start
 * transient <type> unit: Unit <name> was already loaded or has a fragment file." (a loaded unit,
 * running or not: seen on 252 and in the sandbox test of a lost database), or, from older systemd
 * and for a name taken otherwise, "Unit <name> already exists.".
 */
const UNIT_EXISTS = /\bUnit \S+ (?:was already loaded or has a fragment file|already exists)\b/;

/**
 * systemd-run refused to create a unit. `unitExists`: a unit of that name is loaded already (one
 * left by an agent whose database was lost), told from the output here, where it is parsed, so
 * that callers decide on the flag and never on the message.
 */
export class SystemdRunError extends HashdError {
  readonly unitExists: boolean;

  constructor(
    readonly unit: string,
    stderr: string,
  ) {
    super("systemd_failed", `systemd-run refused ${unit}: ${lastLine(stderr)}`, { stderr });
    this.unitExists = UNIT_EXISTS.test(stderr);
  }
}

/** The agent's view of systemd: a thin driver over systemd-run, systemctl and journalctl. */
export class Systemctl {
  constructor(private readonly run: Exec = defaultExec) {}

  /** Creates the transient socket + service pair of a hash and starts its socket. */
  async createTransient(spec: TransientUnitSpec): Promise<void> {
    await this.systemdRun(systemdRunArgv(spec), spec.units.base);
  }

  /**
   * The proxied modes (proxied-unit.ts): the app unit first, behind a timer that never elapses
   * (nothing runs), so that it exists before the socket listens and the proxy's BindsTo= can pull
   * it in; then the socket + proxy pair; then the timer goes, and the proxy's reference keeps the
   * inactive app unit loaded. A failure leaves no app unit behind.
   */
  async createProxied(spec: ProxiedUnitSpec): Promise<void> {
    const { units } = spec;
    await this.systemdRun(appRunArgv(spec), units.app);
    try {
      await this.systemdRun(proxyRunArgv(spec), units.base);
    } catch (e) {
      await this.stop([units.appTimer, units.app]).catch(() => {});
      throw e;
    }
    await this.stop([units.appTimer]);
  }

  private async systemdRun(argv: string[], unit: string): Promise<void> {
    const r = await this.run(argv, { timeoutMs: 30_000 });
    if (r.code !== 0) throw new SystemdRunError(unit, r.stderr);
  }

  /**
   * Starts a unit and waits for its start job: for Type=notify that is READY=1, for Type=exec the
   * exec. Returns false (not an exception) when the unit failed to start, so the caller can collect
   * its journal.
   */
  async start(unit: string, timeoutMs: number): Promise<{ ok: boolean; timedOut: boolean; error: string }> {
    const r = await this.run(["systemctl", "start", unit], { timeoutMs });
    return { ok: r.code === 0, timedOut: r.timedOut, error: lastLine(r.stderr) };
  }

  async stop(units: string[], timeoutMs = 120_000): Promise<void> {
    if (units.length === 0) return;
    const r = await this.run(["systemctl", "stop", ...units], { timeoutMs });
    if (r.code !== 0 && !/not loaded/.test(r.stderr)) {
      throw new HashdError("systemd_failed", `systemctl stop ${units.join(" ")}: ${lastLine(r.stderr)}`);
    }
  }

  /** Clears failed units so a transient unit of the same name can be created again. */
  async resetFailed(units: string[]): Promise<void> {
    if (units.length === 0) return;
    await this.run(["systemctl", "reset-failed", ...units], { timeoutMs: 30_000 });
  }

  /**
   * Properties of many units in one call (one process, whatever the count). Units systemd does
   * not know come back with LoadState=not-found.
   */
  async show(units: string[], properties: string[]): Promise<Map<string, UnitProperties>> {
    const out = new Map<string, UnitProperties>();
    if (units.length === 0) return out;
    const r = await this.run(["systemctl", "show", `--property=Id,${properties.join(",")}`, "--", ...units], {
      timeoutMs: 60_000,
    });
    if (r.code !== 0) throw new HashdError("systemd_failed", `systemctl show: ${lastLine(r.stderr)}`);
    // One block per unit, in argument order, separated by blank lines.
    const blocks = r.stdout.split(/\n\n/);
    units.forEach((unit, i) => {
      const props: UnitProperties = {};
      for (const line of (blocks[i] ?? "").split("\n")) {
        const eq = line.indexOf("=");
        if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
      }
      out.set(unit, props);
    });
    return out;
  }

  /**
   * The unit's last journal lines; `output` is journalctl's -o (cat: messages only). Several units
   * (a proxied hash's proxy and program) come interleaved in time.
   */
  async journal(unit: string | string[], lines = 20, output: JournalOutput = "cat"): Promise<string> {
    const r = await this.run(journalArgv([unit].flat(), { lines, output }), { timeoutMs: 10_000 });
    return r.stdout.trim();
  }
}

export type JournalOutput = "cat" | "short-iso";

/**
 * argv of `journalctl` for the last `lines` entries of some units (interleaved in time), and with
 * `follow` every entry that comes after them until journalctl is stopped (or its standard output
 * is closed: journalctl watches it and exits, checked on systemd 252).
 */
export function journalArgv(
  units: readonly string[],
  o: { lines: number; output: JournalOutput; follow?: boolean },
): string[] {
  if (units.length === 0) throw new Error("journalArgv: no unit");
  return [
    "journalctl",
    "--no-pager",
    "-o",
    o.output,
    "-n",
    String(o.lines),
    ...(o.follow ? ["--follow"] : []),
    ...units.flatMap((u) => ["-u", u]),
  ];
}
