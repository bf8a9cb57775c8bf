import { describe, expect, test } from "bun:test";
import { sharedUser } from "./proxied-unit.ts";
import {
  credentialProperties,
  isEncryptedCredential,
  STATE_DIRECTORY_ROOT,
  stateDirectoryOf,
  stateUser,
} from "./service-identity.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
/** systemd 252's rule for User= names (valid_user_group_name, strict): and at most 31 characters. */
const USER_NAME = /^[a-z_][a-z0-9_-]{0,30}$/;

describe("the user of a service's name (stateDirectory)", () => {
  const names = [
    "api",
    "API",
    "a.b",
    "a-b",
    "a+b",
    "a_b",
    "0",
    "9lives",
    "x".repeat(64),
    `${"x".repeat(63)}y`,
    "Example-Backend.v2+beta",
    "...".replace(/^/, "a"),
  ];

  test("is a valid user name of at most 31 characters, the same every time", () => {
    for (const name of names) {
      expect({ name, user: stateUser(name) }).toEqual({ name, user: expect.stringMatching(USER_NAME) });
      expect(stateUser(name)).toBe(stateUser(name));
    }
    expect(stateUser("api")).toStartWith("hashd-api-");
  });

  test("names that read alike (case, punctuation, a long common prefix) get different users", () => {
    const users = names.map(stateUser);
    expect(new Set(users).size).toBe(names.length);
  });

  test("never collides with a per-hash user (hashd-<25 hash characters>)", () => {
    // a per-hash user has no second dash; a name's user always has one before its digest
    expect(sharedUser(H).indexOf("-", 6)).toBe(-1);
    for (const name of [...names, H, H.slice(0, 25)])
      expect(stateUser(name).indexOf("-", 6)).toBeGreaterThan(6);
  });

  test.each(["", "../x", "a/b", ".", "..", ".hidden", "a b", "a\nb", "x".repeat(65)])(
    "refuses %p, which no manifest can name",
    (bad) => {
      expect(() => stateUser(bad)).toThrow(/service name/);
      expect(() => stateDirectoryOf(bad)).toThrow(/service name/);
    },
  );

  test("the state directory is under /var/lib/hashd-state, by name", () => {
    expect(STATE_DIRECTORY_ROOT).toBe("hashd-state");
    expect(stateDirectoryOf("api")).toBe("hashd-state/api");
    expect(stateDirectoryOf("Example-Backend.v2+beta")).toBe("hashd-state/Example-Backend.v2+beta");
  });
});

describe("credential properties", () => {
  test("a plain file is LoadCredential=, a .cred file LoadCredentialEncrypted=", () => {
    expect(
      credentialProperties([
        { name: "db-url", path: "/run/agenix/db-url" },
        { name: "stripe-key", path: "/etc/credstore.encrypted/stripe-key.cred" },
      ]),
    ).toEqual([
      "LoadCredential=db-url:/run/agenix/db-url",
      "LoadCredentialEncrypted=stripe-key:/etc/credstore.encrypted/stripe-key.cred",
    ]);
    expect(credentialProperties([])).toEqual([]);
    expect(isEncryptedCredential("/run/keys/a.cred")).toBe(true);
    expect(isEncryptedCredential("/run/keys/a.cred.txt")).toBe(false);
    expect(isEncryptedCredential("/run/keys/cred")).toBe(false);
  });

  // The config refuses these already; unit generation refuses them again, since they are spliced
  // into a unit setting.
  test.each([
    [{ name: "db-url", path: "/run/a\nExecStartPre=/bin/sh" }],
    [{ name: "db-url", path: "/run/a:b" }],
    [{ name: "db-url", path: "relative" }],
    [{ name: "db-url", path: "/run/%n" }],
    [{ name: "db-url", path: "/run/../etc/shadow" }],
    [{ name: "db:url", path: "/run/keys/x" }],
    [{ name: "../x", path: "/run/keys/x" }],
    [{ name: "", path: "/run/keys/x" }],
  ])("refuses %p", (credential) => {
    expect(() => credentialProperties([credential])).toThrow(/credential/);
  });
});
