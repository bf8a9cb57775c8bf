import { beforeEach, describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { HashdError } from "../../lib/errors.ts";
import { AliasService } from "../aliases/alias-service.ts";
import { LocalAliasBackend } from "../aliases/local-backend.ts";
import { StateStore } from "../state/store.ts";
import { type RolloutView, rolloutApi } from "./rollout-api.ts";

const V1 = "1".repeat(32);
const V2 = "2".repeat(32);
const GONE = "9".repeat(32);

let now: number;
let aliases: AliasService;
let app: Hono;

beforeEach(() => {
  now = 1_700_000_000_000;
  const store = new StateStore(":memory:");
  aliases = new AliasService(new LocalAliasBackend("a"), store.db, () => now);
  app = new Hono();
  app.onError((err, c) =>
    err instanceof HashdError
      ? c.json(err.toJSON(), err.httpStatus as 400)
      : c.json({ error: String(err) }, 500),
  );
  app.route("/", rolloutApi({ aliases, isLive: (h) => h !== GONE, now: () => now }));
});

const call = async (method: string, path: string, body?: unknown) => {
  const res = await app.request(path, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return {
    status: res.status,
    body: (await res.json()) as RolloutView & { error?: { code: string; message: string } },
  };
};

describe("the rollout API: one alias write per command", () => {
  test("start writes the first step's split and the rollout together; status reads it back", async () => {
    aliases.set({ prod: V1 });
    const r = await call("POST", "/rollouts/prod", { to: V2, steps: [10, 100], stepTimeMs: 5_000 });
    expect(r.status).toBe(201);
    expect(r.body.split).toEqual([
      { hash: V1, weight: 90 },
      { hash: V2, weight: 10 },
    ]);
    expect(r.body.rollout).toMatchObject({ kind: "rollout", from: V1, to: V2, step: 0, status: "running" });
    expect(aliases.current("prod")?.split?.[1]).toEqual({ hash: V2, weight: 10 });
    expect((await call("GET", "/rollouts/prod")).body.summary).toContain("running");
    // starting the same rollout again (deploy --rollout from every target) answers it, unchanged
    const again = await call("POST", "/rollouts/prod", { to: V2 });
    expect(again.status).toBe(200);
    expect(again.body.rollout.steps).toEqual([10, 100]);
  });

  test("pause, resume, abort: each a write; abort puts 100% back on the old hash", async () => {
    aliases.set({ prod: V1 });
    await call("POST", "/rollouts/prod", { to: V2 });
    expect((await call("POST", "/rollouts/prod/pause")).body.rollout.status).toBe("paused");
    expect((await call("POST", "/rollouts/prod/pause")).status).toBe(409);
    now += 1000;
    const resumed = await call("POST", "/rollouts/prod/resume");
    expect(resumed.body.rollout).toMatchObject({ status: "running", stepSince: now });
    const aborted = await call("POST", "/rollouts/prod/abort");
    expect(aborted.body.rollout.status).toBe("aborted");
    expect(aborted.body.rollout.note).toBe("aborted by hand at step 1 (5%)");
    expect(aliases.current("prod")).toMatchObject({ hash: V1 });
    expect(aliases.current("prod")?.split).toBeUndefined();
    expect((await call("POST", "/rollouts/prod/abort")).status).toBe(409);
    expect(aliases.history("prod").map((h) => h.rollout?.status ?? "set")).toEqual([
      "aborted",
      "running",
      "paused",
      "running",
      "set",
    ]);
  });

  test("promote sends 100% to the new hash and ends the rollout", async () => {
    aliases.set({ prod: V1 });
    await call("POST", "/rollouts/prod", { to: V2 });
    const r = await call("POST", "/rollouts/prod/promote");
    expect(r.body.rollout.status).toBe("done");
    expect(aliases.current("prod")).toMatchObject({ hash: V2, previous: [V1] });
    expect(aliases.current("prod")?.split).toBeUndefined();
  });

  test("a guard switches at once and keeps the old hash wanted while it watches", async () => {
    aliases.set({ prod: V1 });
    const r = await call("POST", "/guards", { name: "prod", to: V2, watchMs: 30_000 });
    expect(r.status).toBe(201);
    expect(r.body.rollout).toMatchObject({ kind: "guard", steps: [100], stepTimeMs: 30_000 });
    expect(aliases.resolve("prod")).toBe(V2);
    expect(aliases.isWanted(V1)).toBe(true);
  });

  test("refusals change nothing", async () => {
    const cases: [string, string, unknown, number, RegExp][] = [
      ["POST", "/rollouts/prod", { to: V2 }, 404, /does not exist/],
      ["POST", "/rollouts/Bad", { to: V2 }, 400, /not an alias name/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const r = await call(method, path, body);
      expect(r.status).toBe(status);
      expect(r.body.error?.message).toMatch(message);
    }
    aliases.set({ prod: V1, split: `${V1}:50,${V2}:50` });
    const before = aliases.history("prod").length;
    const refused: [unknown, number, RegExp][] = [
      [{ to: V1 }, 409, /already points/],
      [{ to: GONE }, 409, /not live/],
      [{ to: "nope" }, 400, /not a store hash/],
      [{ to: V2, steps: [50, 25, 100] }, 400, /ascending/],
      [{ to: V2, steps: [5, 25] }, 400, /last step must be 100/],
      [{ to: V2, stepTimeMs: 5 }, 400, /step time/],
      [{ to: V2, maxErrorRate: 2 }, 400, /error rate/],
      [{ to: V2, minRequests: 0 }, 400, /min requests/],
      [{ to: V2, extra: 1 }, 400, /./],
    ];
    for (const [body, status, message] of refused) {
      const r = await call("POST", "/rollouts/prod", body);
      expect([r.status, r.body.error?.message]).toEqual([status, expect.stringMatching(message)]);
    }
    expect((await call("POST", "/rollouts/split", { to: V1 })).body.error?.message).toMatch(/split between/);
    expect(aliases.history("prod")).toHaveLength(before);
    expect((await call("POST", "/rollouts/prod/abort")).status).toBe(404);
    await call("POST", "/rollouts/prod", { to: V2 });
    expect((await call("POST", "/rollouts/prod", { to: V2, steps: [50, 100] })).status).toBe(200);
    expect((await call("POST", "/guards", { name: "prod", to: V2 })).body.error?.message).toMatch(
      /abort or promote/,
    );
  });
});
