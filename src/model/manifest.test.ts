import { describe, expect, test } from "bun:test";
import { HashdError } from "../lib/errors.ts";
import { parseManifest, parseManifestText } from "./manifest.ts";

const minimal = { schema: 1 as const, name: "backend", exec: ["/nix/store/x/bin/server"] };

describe("manifest", () => {
  test("fills defaults", () => {
    expect(parseManifest(minimal)).toEqual({
      ...minimal,
      socket: { type: "fd" },
      readiness: { type: "accept" },
      idleStopSec: 0,
      drainTimeoutSec: 30,
      startTimeoutSec: 60,
      environment: {},
      credentials: [],
      stateDirectory: false,
    });
  });

  test("keeps every field it is given", () => {
    const full = {
      ...minimal,
      socket: { type: "port" as const, port: 8080 },
      readiness: { type: "http" as const, path: "/healthz" },
      idleStopSec: 300,
      drainTimeoutSec: 10,
      startTimeoutSec: 20,
      environment: { BACKEND_URL: "http://abc.localhost/", LANG: "C.UTF-8" },
      credentials: ["db-url", "stripe_key.v2", "0"],
      stateDirectory: true,
    };
    expect(parseManifest(full)).toEqual(full);
  });

  test.each([
    ["schema", { ...minimal, schema: 2 }, "schema"],
    ["name with slash", { ...minimal, name: "a/b" }, "name"],
    ["empty exec", { ...minimal, exec: [] }, "exec"],
    ["relative program", { ...minimal, exec: ["server"] }, "exec"],
    ["newline in argv", { ...minimal, exec: ["/bin/x", "a\nExecStartPre=/bin/sh"] }, "exec.1"],
    ["unknown socket type", { ...minimal, socket: { type: "tcp" } }, "socket.type"],
    ["port out of range", { ...minimal, socket: { type: "port", port: 70000 } }, "socket.port"],
    ["readiness without path", { ...minimal, readiness: { type: "http" } }, "readiness.path"],
    ["negative idle", { ...minimal, idleStopSec: -1 }, "idleStopSec"],
    ["bad env name", { ...minimal, environment: { "A=B": "x" } }, "environment"],
    ["newline in env", { ...minimal, environment: { A: "x\ny" } }, "environment.A"],
    ["unknown field", { ...minimal, execStart: "/bin/sh" }, "execStart"],
    // credentials: names only, each a plain lower-case file name, at most 32, no duplicates
    ["a credential with a value", { ...minimal, credentials: { "db-url": "postgres://" } }, "credentials"],
    ["a credential name with a slash", { ...minimal, credentials: ["a/b"] }, "credentials.0"],
    ["a credential name ..", { ...minimal, credentials: [".."] }, "credentials.0"],
    ["a hidden credential name", { ...minimal, credentials: [".env"] }, "credentials.0"],
    ["an empty credential name", { ...minimal, credentials: [""] }, "credentials.0"],
    ["an upper-case credential name", { ...minimal, credentials: ["DB_URL"] }, "credentials.0"],
    ["a credential name with a colon", { ...minimal, credentials: ["db:/etc/shadow"] }, "credentials.0"],
    ["a credential name with a space", { ...minimal, credentials: ["db url"] }, "credentials.0"],
    ["a credential name with a newline", { ...minimal, credentials: ["db\nx"] }, "credentials.0"],
    ["a credential name of 65", { ...minimal, credentials: ["a".repeat(65)] }, "credentials.0"],
    ["a credential that is not a string", { ...minimal, credentials: [1] }, "credentials.0"],
    ["a credential named twice", { ...minimal, credentials: ["db-url", "x", "db-url"] }, "db-url"],
    [
      "33 credentials",
      { ...minimal, credentials: Array.from({ length: 33 }, (_, i) => `c${i}`) },
      "credentials",
    ],
    ["a state directory given as a path", { ...minimal, stateDirectory: "/var/lib/api" }, "stateDirectory"],
    ["a state directory given as 1", { ...minimal, stateDirectory: 1 }, "stateDirectory"],
  ])("refuses %s and names the field", (_, input, field) => {
    try {
      parseManifest(input);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(HashdError);
      expect((e as HashdError).code).toBe("bad_request");
      expect((e as HashdError).message).toContain(field);
      // refused by the field's own rule, not as a key the schema does not know
      if (field !== "execStart") expect((e as HashdError).message).not.toContain("Unrecognized key");
    }
  });

  test("credentials: 64-character names and 32 of them are fine", () => {
    const names = Array.from({ length: 32 }, (_, i) => `${i}`.padEnd(64, "x"));
    expect(parseManifest({ ...minimal, credentials: names }).credentials).toEqual(names);
  });

  test("refuses text that is not JSON or is too large", () => {
    expect(() => parseManifestText("{not json")).toThrow(/not JSON/);
    expect(() => parseManifestText(" ".repeat(70_000))).toThrow(/larger than/);
  });
});
