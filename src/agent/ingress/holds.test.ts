import { describe, expect, test } from "bun:test";
import { HashdError } from "../../lib/errors.ts";
import { Holds } from "./holds.ts";
import { holdsApp } from "./holds-app.ts";
import { FakeClock, HASH_A, HASH_B } from "./test-support.ts";

function setup() {
  const clock = new FakeClock();
  let n = 0;
  const holds = new Holds({ clock, newId: () => `hold-${++n}` });
  return { clock, holds };
}

describe("Holds", () => {
  test("a lease keeps its hash busy until it expires by itself", () => {
    const { clock, holds } = setup();
    const hold = holds.acquire(HASH_A, 30);
    expect(hold).toMatchObject({ id: "hold-1", hash: HASH_A, ttlSec: 30, expiresAt: clock.t + 30_000 });
    expect(holds.activeCount(HASH_A)).toBe(1);
    clock.advance(29_999);
    expect(holds.activeCount(HASH_A)).toBe(1);
    clock.advance(1);
    expect(holds.activeCount(HASH_A)).toBe(0);
    expect(holds.list()).toEqual([]);
    // the hash was busy until the expiry time, not until someone looked
    clock.advance(10_000);
    expect(holds.lastEnded(HASH_A)).toBe(hold.expiresAt);
  });

  test("renewal extends from now, with the lease's ttl or a new one", () => {
    const { clock, holds } = setup();
    const { id } = holds.acquire(HASH_A, 10);
    clock.advance(8_000);
    expect(holds.renew(id).expiresAt).toBe(clock.t + 10_000);
    clock.advance(9_000);
    expect(holds.activeCount(HASH_A)).toBe(1);
    expect(holds.renew(id, 60)).toMatchObject({ ttlSec: 60, expiresAt: clock.t + 60_000 });
  });

  test("an expired lease can't be renewed or released", () => {
    const { clock, holds } = setup();
    const { id } = holds.acquire(HASH_A, 1);
    clock.advance(1_000);
    expect(() => holds.renew(id)).toThrow(/no live hold/);
    expect(() => holds.release(id)).toThrow(HashdError);
  });

  test("release ends the hold at once; holds of other hashes are untouched", () => {
    const { clock, holds } = setup();
    const a = holds.acquire(HASH_A, 60);
    holds.acquire(HASH_B, 60);
    clock.advance(5);
    holds.release(a.id);
    expect(holds.activeCount(HASH_A)).toBe(0);
    expect(holds.lastEnded(HASH_A)).toBe(clock.t);
    expect(holds.list().map((h) => h.hash)).toEqual([HASH_B]);
    expect(() => holds.release(a.id)).toThrow(/no live hold/);
  });

  test("refuses bad input", () => {
    const { holds } = setup();
    expect(() => holds.acquire("not-a-hash", 10)).toThrow(/not a store hash/);
    expect(() => holds.acquire(HASH_A, 0)).toThrow(/ttlSec/);
    expect(() => holds.acquire(HASH_A, "10")).toThrow(/ttlSec/);
    expect(() => holds.acquire(HASH_A, 86_401)).toThrow(/ttlSec/);
    const few = new Holds({ maxPerHash: 1 });
    few.acquire(HASH_A, 10);
    expect(() => few.acquire(HASH_A, 10)).toThrow(/already has 1 holds/);
  });
});

describe("holdsApp", () => {
  const json = (body: unknown) => ({
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

  test("acquire, list, renew, release", async () => {
    const { clock, holds } = setup();
    const app = holdsApp(holds);
    const created = await app.request("/v1/holds", json({ hash: HASH_A, ttlSec: 30 }));
    expect(created.status).toBe(201);
    const hold = (await created.json()) as { id: string; hash: string; ttlSec: number; expiresAt: string };
    expect(hold).toEqual({
      id: "hold-1",
      hash: HASH_A,
      ttlSec: 30,
      expiresAt: new Date(clock.t + 30_000).toISOString(),
    });

    const listed = (await (await app.request(`/v1/holds?hash=${HASH_A}`)).json()) as { holds: unknown[] };
    expect(listed.holds).toHaveLength(1);

    clock.advance(20_000);
    const renewed = await app.request(`/v1/holds/${hold.id}/renew`, { method: "POST" });
    expect(renewed.status).toBe(200);
    expect(((await renewed.json()) as { expiresAt: string }).expiresAt).toBe(
      new Date(clock.t + 30_000).toISOString(),
    );
    const longer = await app.request(`/v1/holds/${hold.id}/renew`, json({ ttlSec: 120 }));
    expect(((await longer.json()) as { ttlSec: number }).ttlSec).toBe(120);

    expect((await app.request(`/v1/holds/${hold.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await app.request(`/v1/holds/${hold.id}`, { method: "DELETE" })).status).toBe(404);
  });

  test("errors are JSON with the HashdError status", async () => {
    const { holds } = setup();
    const app = holdsApp(holds);
    const bad = await app.request("/v1/holds", json({ hash: "nope", ttlSec: 5 }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("bad_request");
    const extra = await app.request("/v1/holds", json({ hash: HASH_A, ttlSec: 5, more: 1 }));
    expect(extra.status).toBe(400);
    const notJson = await app.request("/v1/holds", { method: "POST", body: "{" });
    expect(notJson.status).toBe(400);
    const missing = await app.request("/v1/holds/nothing/renew", { method: "POST" });
    expect(missing.status).toBe(404);
  });

  test("mounted under another app keeps its error mapping", async () => {
    const { Hono } = await import("hono");
    const api = new Hono();
    api.route("/", holdsApp(setup().holds));
    expect((await api.request("/v1/holds", json({ hash: "x", ttlSec: 1 }))).status).toBe(400);
  });
});
