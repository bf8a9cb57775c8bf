import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HASH_A, tempDir } from "../../../test/support/ingress/servers.ts";
import { HashdError } from "../../lib/errors.ts";
import { BYPASS_FILE_MAX, BypassSecret, BypassTokenFile, readBypassToken } from "./bypass-token.ts";

const dir = tempDir("hashd-bypass-");
afterAll(() => dir.remove());
const TOKEN = `${"a".repeat(16)}0123456789._~-AZ`;

function file(name: string, content: string | Buffer): string {
  const path = join(dir.path, name);
  writeFileSync(path, content);
  return path;
}

function refusal(path: string): string {
  try {
    readBypassToken(path);
  } catch (e) {
    expect(e).toBeInstanceOf(HashdError);
    expect((e as HashdError).code).toBe("bad_request");
    return (e as Error).message;
  }
  throw new Error(`${path} was accepted`);
}

describe("the token file", () => {
  test("a token and a newline is read without the newline", () => {
    expect(readBypassToken(file("ok", `${TOKEN}\n`))).toBe(TOKEN);
  });

  test("refused with a message that says what to do: empty, short, odd characters, too large, missing", () => {
    expect(refusal(file("empty", "\n"))).toBe(
      `access.bypassTokenFile ${dir.path}/empty is empty: write a token of at least 32 characters (openssl rand -hex 32)`,
    );
    expect(refusal(file("short", "abc123\n"))).toBe(
      `access.bypassTokenFile ${dir.path}/short holds a token of 6 characters; at least 32 are needed (openssl rand -hex 32)`,
    );
    expect(refusal(file("spaces", `${TOKEN} ${TOKEN}`))).toContain(
      "holds characters other than letters, digits",
    );
    expect(refusal(file("plus", `${TOKEN}+/=`))).toContain("holds characters other than letters, digits");
    expect(refusal(file("long", "a".repeat(600)))).toContain("holds a token of 600 characters; at most 512");
    expect(refusal(file("huge", Buffer.alloc(BYPASS_FILE_MAX + 1, 97)))).toContain(
      `cannot be read: larger than ${BYPASS_FILE_MAX} bytes`,
    );
    expect(refusal(join(dir.path, "missing"))).toContain("cannot be read: ENOENT");
    expect(refusal(dir.path)).toContain("cannot be read: not a regular file");
  });

  test("read again when it changes; a bad or missing file withdraws the token (fail closed)", () => {
    const path = file("watched", TOKEN);
    const lines: string[] = [];
    const watched = BypassTokenFile.open(path, (m) => lines.push(m));
    expect(watched.secret()?.matches(TOKEN)).toBe(true);
    watched.check(); // unchanged: nothing read, nothing logged
    expect(lines).toEqual([]);
    const next = "b".repeat(40);
    writeFileSync(`${path}.new`, next);
    renameSync(`${path}.new`, path); // rotated as editors and agenix do: a new inode
    watched.check();
    expect(watched.secret()?.matches(next)).toBe(true);
    expect(watched.secret()?.matches(TOKEN)).toBe(false);
    writeFileSync(path, "short");
    watched.check();
    expect(watched.secret()).toBeUndefined();
    rmSync(path);
    watched.check();
    expect(watched.secret()).toBeUndefined();
    writeFileSync(path, TOKEN);
    chmodSync(path, 0o400);
    watched.check();
    expect(watched.secret()?.matches(TOKEN)).toBe(true);
    expect(lines.filter((l) => l.includes("no bypass token is taken"))).toHaveLength(2);
  });

  test("a bad file stops the agent from starting (open throws)", () => {
    expect(() => BypassTokenFile.open(file("bad", "x"), () => {})).toThrow("at least 32 are needed");
  });
});

describe("the secret", () => {
  const secret = new BypassSecret(TOKEN);

  test("compares over equal-length digests: no length, however odd, throws or matches", () => {
    for (const given of ["", "a", TOKEN.slice(1), `${TOKEN}a`, "é".repeat(40), "\u0000".repeat(32)])
      expect(secret.matches(given)).toBe(false);
    expect(secret.matches(TOKEN)).toBe(true);
  });

  test("a very long guess is refused before it is hashed", () => {
    const guess = "x".repeat(1_000_000);
    const started = performance.now();
    for (let i = 0; i < 1000; i++) secret.matches(guess);
    // 1,000 hashes of 1 MB would take seconds; refusing by length takes (much) less than one
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("cookies: bound to one hash and an expiry; malformed ones are refused before parsing", () => {
    const now = 1_700_000_000_000;
    const cookie = secret.cookieFor(HASH_A, now);
    expect(cookie).toMatch(/^v1\.\d{10}\.[A-Za-z0-9_-]{43}$/);
    expect(cookie).not.toContain(TOKEN);
    expect(secret.cookieOpens(cookie, HASH_A, now)).toBe(true);
    expect(secret.cookieOpens(`${cookie}x`, HASH_A, now)).toBe(false);
    expect(secret.cookieOpens(cookie.toUpperCase(), HASH_A, now)).toBe(false);
    expect(secret.cookieOpens(`${cookie}${"A".repeat(10_000)}`, HASH_A, now)).toBe(false);
  });
});
