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
  ])("refuses %s and names the field", (_, input, field) => {
    try {
      parseManifest(input);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(HashdError);
      expect((e as HashdError).code).toBe("bad_request");
      expect((e as HashdError).message).toContain(field);
    }
  });

  test("refuses text that is not JSON or is too large", () => {
    expect(() => parseManifestText("{not json")).toThrow(/not JSON/);
    expect(() => parseManifestText(" ".repeat(70_000))).toThrow(/larger than/);
  });
});
