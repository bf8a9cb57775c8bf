import { describe, expect, test } from "bun:test";
import { HashdError } from "../lib/errors.ts";
import type { Exec } from "../lib/exec.ts";
import { parseManifest } from "../model/manifest.ts";
import { Systemctl, SystemdRunError } from "./systemctl.ts";
import { hashUnits } from "./unit-names.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const spec = {
  units: hashUnits(H, "/run/hashd/sockets"),
  storePath: `/nix/store/${H}-backend`,
  manifest: parseManifest({ schema: 1, name: "backend", exec: ["/bin/true"] }),
  agentEnvironment: {},
};

/** A host whose systemd-run fails with `stderr`. */
const refusing =
  (stderr: string): Exec =>
  async () => ({ code: 1, stdout: "", stderr, timedOut: false });

async function refusal(stderr: string): Promise<SystemdRunError> {
  const e = await new Systemctl(refusing(stderr)).createTransient(spec).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(SystemdRunError);
  return e as SystemdRunError;
}

describe("systemd-run refusals", () => {
  test("a unit name that is taken is told apart where the output is parsed", async () => {
    // the words of org.freedesktop.systemd1.UnitExists: systemd 252's for a loaded unit, and older
    for (const words of ["already exists.", "was already loaded or has a fragment file."]) {
      const taken = await refusal(
        `Failed to start transient service unit: Unit hashd-${H}.service ${words}\n`,
      );
      expect({ words, unitExists: taken.unitExists }).toEqual({ words, unitExists: true });
    }
    const e = await refusal(
      `Failed to start transient socket unit: Unit hashd-${H}.socket was already loaded or has a fragment file.\n`,
    );
    expect(e.unitExists).toBe(true);
    expect(e).toBeInstanceOf(HashdError);
    expect(e.code).toBe("systemd_failed");
    expect(e.unit).toBe(`hashd-${H}`);
    expect(e.message).toBe(
      `systemd-run refused hashd-${H}: Failed to start transient socket unit: Unit hashd-${H}.socket was already loaded or has a fragment file.`,
    );
  });

  test("any other refusal is not, whatever its words", async () => {
    for (const stderr of [
      "Failed to start transient socket unit: Access denied",
      "Failed to create bus connection: No such file or directory",
      "Failed to start transient service unit: /run/hashd/hold-token already exists as a directory",
      "",
    ]) {
      const e = await refusal(stderr);
      expect({ stderr, unitExists: e.unitExists }).toEqual({ stderr, unitExists: false });
      expect(e.code).toBe("systemd_failed");
    }
  });
});
