import { beforeEach, describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { HashdError } from "../../lib/errors.ts";
import { AliasService } from "../aliases/alias-service.ts";
import { LocalAliasBackend } from "../aliases/local-backend.ts";
import { StateStore } from "../state/store.ts";
import { aliasApi } from "./alias-api.ts";

const V1 = "1".repeat(32);
const V2 = "2".repeat(32);
let app: Hono;
let retired: Set<string>;

beforeEach(() => {
  let now = 1;
  retired = new Set();
  const aliases = new AliasService(new LocalAliasBackend("a"), new StateStore(":memory:").db, () => now++);
  app = new Hono();
  app.onError((err, c) =>
    err instanceof HashdError
      ? c.json(err.toJSON(), err.httpStatus as 400)
      : c.json({ error: String(err) }, 500),
  );
  app.route("/v1", aliasApi({ aliases, isLive: (h) => !retired.has(h) }));
});

const post = (path: string, body: unknown) =>
  app.request(path, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });

describe("alias API", () => {
  test("set, list, history, rollback, rm", async () => {
    expect((await post("/v1/aliases", { set: { prod: V1, api: V2 } })).status).toBe(200);
    await post("/v1/aliases", { set: { prod: V2 } });
    const list = (await (await app.request("/v1/aliases")).json()) as {
      aliases: { name: string; hash: string }[];
    };
    expect(list.aliases.map((a) => [a.name, a.hash])).toEqual([
      ["api", V2],
      ["prod", V2],
    ]);
    const hist = (await (await app.request("/v1/aliases/prod/history")).json()) as {
      history: { hash: string }[];
    };
    expect(hist.history.map((h) => h.hash)).toEqual([V2, V1]);
    const rb = (await (await post("/v1/aliases/prod/rollback", {})).json()) as { alias: { hash: string } };
    expect(rb.alias.hash).toBe(V1);
    expect((await app.request("/v1/aliases/api", { method: "DELETE" })).status).toBe(200);
    expect((await app.request("/v1/aliases/api")).status).toBe(404);
  });

  test("bad input is a 400 that changes nothing", async () => {
    for (const body of [{ set: { "Bad!": V1 } }, { set: { prod: "short" } }, { set: {} }, { nope: 1 }, "x"]) {
      expect((await post("/v1/aliases", body)).status).toBe(400);
    }
    expect(((await (await app.request("/v1/aliases")).json()) as { aliases: unknown[] }).aliases).toEqual([]);
  });

  test("rollback to a retired hash is refused", async () => {
    await post("/v1/aliases", { set: { prod: V1 } });
    await post("/v1/aliases", { set: { prod: V2 } });
    retired.add(V1);
    const r = await post("/v1/aliases/prod/rollback", {});
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { message: string } }).error.message).toContain("retired");
  });

  test("pins", async () => {
    expect(((await (await post("/v1/pins", { hash: V1 })).json()) as { pins: string[] }).pins).toEqual([V1]);
    expect((await app.request(`/v1/pins/${V1}`, { method: "DELETE" })).status).toBe(200);
    expect((await app.request(`/v1/pins/${V1}`, { method: "DELETE" })).status).toBe(404);
  });
});
