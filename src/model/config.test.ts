import { describe, expect, test } from "bun:test";
import { HashdError } from "../lib/errors.ts";
import { parseConfig } from "./config.ts";

/** The problems parseConfig names for `credentials`, or [] when it takes them. */
function problems(credentials: unknown): string[] {
  try {
    parseConfig({ credentials });
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(HashdError);
    expect((e as HashdError).code).toBe("bad_request");
    return (e as HashdError).details?.problems as string[];
  }
}

describe("config: credentials (service name -> credential name -> file)", () => {
  test.each([
    ["a value instead of a path", { api: { "db-url": "postgres://u:p@db/x" } }, "credentials.api.db-url"],
    ["a relative path", { api: { "db-url": "run/agenix/db-url" } }, "credentials.api.db-url"],
    ["a path with ..", { api: { "db-url": "/run/agenix/../../etc/shadow" } }, "credentials.api.db-url"],
    ["a path with a hidden segment", { api: { "db-url": "/run/.secrets/db" } }, "credentials.api.db-url"],
    ["a path with a colon", { api: { "db-url": "/run/a:b" } }, "credentials.api.db-url"],
    ["a path with a %", { api: { "db-url": "/run/%i" } }, "credentials.api.db-url"],
    ["a path with a space", { api: { "db-url": "/run/my secret" } }, "credentials.api.db-url"],
    ["a path with a newline", { api: { "db-url": "/run/a\nExecStart=/bin/sh" } }, "credentials.api.db-url"],
    ["a path ending in /", { api: { "db-url": "/run/agenix/" } }, "credentials.api.db-url"],
    ["a path in the Nix store", { api: { "db-url": `/nix/store/${"0".repeat(32)}-db` } }, "Nix store"],
    ["a path in /tmp", { api: { "db-url": "/tmp/db-url" } }, "PrivateTmp"],
    ["a path in /var/tmp", { api: { "db-url": "/var/tmp/db-url" } }, "PrivateTmp"],
    ["a path of 1025 characters", { api: { "db-url": `/${"a".repeat(1024)}` } }, "credentials.api.db-url"],
    ["a path that is a number", { api: { "db-url": 1 } }, "credentials.api.db-url"],
    ["a bad credential name", { api: { "DB URL": "/run/agenix/db-url" } }, "credentials.api"],
    ["a credential name with a slash", { api: { "../x": "/run/agenix/db-url" } }, "credentials.api"],
    ["a bad service name", { "api/v1": { "db-url": "/run/agenix/db-url" } }, "credentials"],
    ["a service name with a leading dot", { ".api": { "db-url": "/run/agenix/db-url" } }, "credentials"],
    ["a list instead of a map", { api: ["/run/agenix/db-url"] }, "credentials.api"],
    [
      "33 credentials for one service",
      { api: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`c${i}`, `/run/keys/c${i}`])) },
      "credentials.api",
    ],
    [
      "1025 services",
      Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`s${i}`, { c: "/run/keys/c" }])),
      "credentials",
    ],
  ])("refuses %s", (_, credentials, where) => {
    const found = problems(credentials);
    expect(found.length).toBeGreaterThan(0);
    expect(found.join("\n")).toContain(where);
  });

  test("takes absolute plain paths, encrypted ones (.cred) too, and defaults to none", () => {
    const credentials = {
      api: { "db-url": "/run/agenix/db-url", "stripe-key": "/etc/credstore.encrypted/stripe-key.cred" },
      "web.v2+x": { token: "/run/keys/web@token" },
    };
    expect(problems(credentials)).toEqual([]);
    expect(parseConfig({ credentials }).credentials).toEqual(credentials);
    expect(parseConfig({}).credentials).toEqual({});
    const many = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`c${i}`, `/run/keys/c${i}`]));
    expect(problems({ api: many })).toEqual([]);
  });
});

describe("config: tls (HTTPS on every hash URL)", () => {
  function tlsProblems(tls: unknown): string[] {
    try {
      parseConfig({ tls });
      return [];
    } catch (e) {
      expect(e).toBeInstanceOf(HashdError);
      return (e as HashdError).details?.problems as string[];
    }
  }

  test.each([
    ["a key without a certificate", { keyFile: "/k.pem" }, "tls.certificateFile"],
    ["a certificate without a key", { certificateFile: "/c.pem" }, "tls.keyFile"],
    ["a relative certificate path", { certificateFile: "c.pem", keyFile: "/k.pem" }, "tls.certificateFile"],
    ["a port out of range", { certificateFile: "/c.pem", keyFile: "/k.pem", port: 65536 }, "tls.port"],
    ["an unknown field", { certificateFile: "/c.pem", keyFile: "/k.pem", minVersion: "1.0" }, "tls"],
  ])("refuses %s", (_what, tls, field) => {
    const found = tlsProblems(tls);
    expect(found.length).toBeGreaterThan(0);
    expect(found.join("\n")).toContain(field);
  });

  test("defaults: port 443, no redirect; absent: no TLS listener", () => {
    expect(parseConfig({ tls: { certificateFile: "/c.pem", keyFile: "/k.pem" } }).tls).toEqual({
      certificateFile: "/c.pem",
      keyFile: "/k.pem",
      port: 443,
      redirectHttp: false,
      checkSec: 10,
    });
    expect(parseConfig({}).tls).toBeUndefined();
  });
});
