import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock, HASH_A, HASH_B } from "../../../test/support/ingress/servers.ts";
import { HoldTokens, installHoldToken } from "./hold-tokens.ts";
import { Holds } from "./holds.ts";
import { holdsApp } from "./holds-app.ts";

const tokens = HoldTokens.fromSecret(new Uint8Array(32).fill(7));
const auth = (hash: string) => ({ authorization: `Bearer ${tokens.tokenFor(hash)}` });

function setup() {
  const clock = new FakeClock();
  let n = 0;
  const holds = new Holds({ clock, newId: () => `hold-${++n}` });
  return { clock, holds, app: holdsApp(holds, tokens) };
}

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

const codeOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string } }).error.code;

describe("holdsApp", () => {
  test("acquire, list, renew, release with the hash's token", async () => {
    const { clock, app } = setup();
    const created = await app.request("/v1/holds", post({ hash: HASH_A, ttlSec: 30 }, auth(HASH_A)));
    expect(created.status).toBe(201);
    const hold = (await created.json()) as { id: string; hash: string; ttlSec: number; expiresAt: string };
    expect(hold).toEqual({
      id: "hold-1",
      hash: HASH_A,
      ttlSec: 30,
      expiresAt: new Date(clock.t + 30_000).toISOString(),
    });

    const listed = await app.request(`/v1/holds?hash=${HASH_A}`, { headers: auth(HASH_A) });
    expect(((await listed.json()) as { holds: unknown[] }).holds).toHaveLength(1);

    clock.advance(20_000);
    const renewed = await app.request(`/v1/holds/${hold.id}/renew`, {
      method: "POST",
      headers: auth(HASH_A),
    });
    expect(renewed.status).toBe(200);
    expect(((await renewed.json()) as { expiresAt: string }).expiresAt).toBe(
      new Date(clock.t + 30_000).toISOString(),
    );
    const longer = await app.request(`/v1/holds/${hold.id}/renew`, post({ ttlSec: 120 }, auth(HASH_A)));
    expect(((await longer.json()) as { ttlSec: number }).ttlSec).toBe(120);

    const release = { method: "DELETE", headers: auth(HASH_A) };
    expect((await app.request(`/v1/holds/${hold.id}`, release)).status).toBe(204);
    expect((await app.request(`/v1/holds/${hold.id}`, release)).status).toBe(404);
  });

  test("no token, a malformed one, or another hash's token: 403 and nothing changes", async () => {
    const { holds, app } = setup();
    for (const headers of [{}, { authorization: "Bearer" }, { authorization: "Basic abc" }, auth(HASH_B)]) {
      const refused = await app.request("/v1/holds", post({ hash: HASH_A, ttlSec: 30 }, headers));
      expect(refused.status).toBe(403);
      expect(await codeOf(refused)).toBe("forbidden");
    }
    expect(holds.list()).toEqual([]);

    // B's service can't renew, release or list A's hold, even knowing its id
    const hold = holds.acquire(HASH_A, 30);
    const asB = auth(HASH_B);
    expect((await app.request(`/v1/holds/${hold.id}/renew`, { method: "POST", headers: asB })).status).toBe(
      403,
    );
    expect((await app.request(`/v1/holds/${hold.id}`, { method: "DELETE", headers: asB })).status).toBe(403);
    expect((await app.request(`/v1/holds?hash=${HASH_A}`, { headers: asB })).status).toBe(403);
    expect((await app.request(`/v1/holds?hash=${HASH_A}`)).status).toBe(403);
    expect(holds.activeCount(HASH_A)).toBe(1);
    expect(holds.get(hold.id).expiresAt).toBe(hold.expiresAt);
  });

  test("bad input is 400, an unknown hold 404, both as JSON errors", async () => {
    const { app } = setup();
    expect((await app.request("/v1/holds", post({ hash: "nope", ttlSec: 5 }, auth(HASH_A)))).status).toBe(
      400,
    );
    const extra = await app.request("/v1/holds", post({ hash: HASH_A, ttlSec: 5, more: 1 }, auth(HASH_A)));
    expect(extra.status).toBe(400);
    expect(await codeOf(extra)).toBe("bad_request");
    const notJson = await app.request("/v1/holds", { method: "POST", body: "{", headers: auth(HASH_A) });
    expect(notJson.status).toBe(400);
    expect((await app.request("/v1/holds", { headers: auth(HASH_A) })).status).toBe(400);
    const missing = await app.request("/v1/holds/nothing/renew", { method: "POST", headers: auth(HASH_A) });
    expect(missing.status).toBe(404);
  });

  test("mounted under another app keeps its error mapping", async () => {
    const { Hono } = await import("hono");
    const api = new Hono();
    api.route("/", setup().app);
    expect((await api.request("/v1/holds", post({ hash: "x", ttlSec: 1 }))).status).toBe(400);
  });
});

describe("HoldTokens", () => {
  test("a token is per hash and per secret, and verifies in full only", () => {
    const other = HoldTokens.fromSecret(new Uint8Array(32).fill(8));
    const token = tokens.tokenFor(HASH_A);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokens.verify(HASH_A, token)).toBe(true);
    expect(tokens.verify(HASH_B, token)).toBe(false);
    expect(other.verify(HASH_A, token)).toBe(false);
    expect(tokens.verify(HASH_A, token.slice(0, -1))).toBe(false);
    expect(tokens.verify(HASH_A, undefined)).toBe(false);
    expect(tokens.verify("not-a-hash", token)).toBe(false);
    expect(() => HoldTokens.fromSecret(new Uint8Array(16))).toThrow(/32 bytes/);
  });

  test("the secret is created once (0600) and read back by the next agent process", () => {
    const dir = mkdtempSync(join(tmpdir(), "hashd-hold-secret-"));
    try {
      const first = HoldTokens.open(dir);
      expect(statSync(join(dir, "hold-secret")).mode & 0o777).toBe(0o600);
      expect(HoldTokens.open(dir).tokenFor(HASH_A)).toBe(first.tokenFor(HASH_A));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("installHoldToken: the token in a root-only directory and the file its bind mount covers", () => {
    const dir = mkdtempSync(join(tmpdir(), "hashd-hold-token-"));
    try {
      const paths = installHoldToken(tokens, dir, HASH_A);
      expect(paths).toEqual({ source: join(dir, "hold-tokens", HASH_A), target: join(dir, "hold-token") });
      expect(readFileSync(paths.source, "utf8")).toBe(tokens.tokenFor(HASH_A));
      expect(statSync(join(dir, "hold-tokens")).mode & 0o777).toBe(0o700);
      expect(readFileSync(paths.target, "utf8")).toBe("");
      expect(installHoldToken(tokens, dir, HASH_A)).toEqual(paths); // idempotent
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
