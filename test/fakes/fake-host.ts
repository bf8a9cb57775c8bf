import type { Exec, ExecResult } from "../../src/lib/exec.ts";

/**
 * A stand-in for systemd and Nix in unit tests of the agent's logic: it answers the argv the
 * agent runs (systemd-run, systemctl, journalctl, nix-store) from an in-memory model and records
 * every call. The integration tests in test/sandbox run the same code against the real ones.
 */
export class FakeHost {
  readonly calls: string[][] = [];
  readonly valid = new Set<string>();
  /** unit name -> ActiveState */
  readonly units = new Map<string, string>();
  /** services whose start fails */
  readonly failing = new Set<string>();
  /** when set, every systemd-run fails with this on stderr */
  runRefusal: string | undefined;

  exec: Exec = async (argv) => {
    this.calls.push(argv);
    const [cmd, sub, ...rest] = argv;
    const ok = (stdout = ""): ExecResult => ({ code: 0, stdout, stderr: "", timedOut: false });
    const fail = (stderr: string): ExecResult => ({ code: 1, stdout: "", stderr, timedOut: false });
    if (cmd === "nix-store" && sub === "--check-validity")
      return this.valid.has(rest[0] ?? "") ? ok() : fail("invalid");
    if (cmd === "journalctl") return ok("boom: exit 3\n");
    if (cmd === "systemd-run") {
      if (this.runRefusal !== undefined) return fail(this.runRefusal);
      const base = argv.find((a) => a.startsWith("--unit="))?.slice(7) ?? "";
      // a taken name is refused in systemd 252's words for UnitExists (src/systemd/systemctl.ts)
      if (argv.some((a) => a.startsWith("--on-active="))) {
        // a service created behind a timer (proxied modes): loaded, not started
        if (this.units.has(base))
          return fail(
            `Failed to start transient service unit: Unit ${base} was already loaded or has a fragment file.`,
          );
        this.units.set(base, "inactive");
        this.units.set(base.replace(/\.service$/, ".timer"), "active");
        return ok();
      }
      if (this.units.has(`${base}.socket`))
        return fail(
          `Failed to start transient socket unit: Unit ${base}.socket was already loaded or has a fragment file.`,
        );
      this.units.set(`${base}.socket`, "active");
      return ok();
    }
    if (cmd !== "systemctl") return fail(`unexpected command ${cmd}`);
    const names = rest.filter((a) => !a.startsWith("-"));
    switch (sub) {
      case "start": {
        const unit = names[0] ?? "";
        if (this.failing.has(unit)) {
          this.units.set(unit, "failed");
          return fail(`Job for ${unit} failed.`);
        }
        this.units.set(unit, "active");
        return ok();
      }
      case "stop":
        for (const n of names) this.units.delete(n);
        return ok();
      case "reset-failed":
        for (const n of names) if (this.units.get(n) === "failed") this.units.delete(n);
        return ok();
      case "show":
        return ok(
          names
            .map((n) => {
              const state = this.units.get(n);
              return `Id=${n}\nLoadState=${state ? "loaded" : "not-found"}\nActiveState=${state ?? "inactive"}\nSubState=x\nResult=exit-code`;
            })
            .join("\n\n"),
        );
      default:
        return fail(`unexpected systemctl ${sub}`);
    }
  };

  countOf(cmd: string, sub?: string): number {
    return this.calls.filter((c) => c[0] === cmd && (sub === undefined || c[1] === sub)).length;
  }
}
