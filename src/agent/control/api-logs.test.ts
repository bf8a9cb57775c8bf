import { beforeEach, describe, expect, test } from "bun:test";
import { inertActivator } from "../../../test/fakes/inert-activator.ts";
import { parseManifest } from "../../model/manifest.ts";
import { AliasService } from "../aliases/alias-service.ts";
import { LocalAliasBackend } from "../aliases/local-backend.ts";
import { StateStore } from "../state/store.ts";
import { controlApi } from "./api.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const P = "1c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6"; // a proxied service
const ELSEWHERE = "2c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6"; // runs on another member only

let app: ReturnType<typeof controlApi>;
let asked: unknown[];

beforeEach(() => {
  const store = new StateStore(":memory:");
  store.beginActivation(
    `/nix/store/${H}-web`,
    H,
    parseManifest({ schema: 1, name: "web", exec: ["/bin/true"] }),
    "test",
  );
  store.beginActivation(
    `/nix/store/${P}-api`,
    P,
    parseManifest({ schema: 1, name: "api", exec: ["/bin/true"], socket: { type: "unix" } }),
    "test",
  );
  const activator = inertActivator(store);
  asked = [];
  const journal = {
    journal: async (unit: string | string[], lines?: number, output?: string) => {
      asked.push([unit, lines, output]);
      return "2025-01-01T00:00:00+0000 a web[1]: up\n-- No entries --";
    },
  };
  const aliases = new AliasService(new LocalAliasBackend("a"), store.db);
  aliases.set({ prod: H, api: P, gone: ELSEWHERE });
  const cluster = {
    self: "a",
    memberInfos: () => [],
    memberState: () => null,
    whoRuns: (hash: string) =>
      hash === ELSEWHERE
        ? [
            {
              member: "b",
              ingress: "10.0.0.2:8480",
              report: { hash, state: "ready" as const, inFlight: 0, holds: 0, refs: [] },
            },
          ]
        : [],
  };
  app = controlApi(
    { store, activator, version: "t", journal, aliases: { aliases, isLive: () => true }, cluster },
    () => {},
  );
});

const get = async (path: string) => {
  const r = await app.request(path);
  return {
    status: r.status,
    body: (await r.json()) as Record<string, unknown> & { error?: { message: string } },
  };
};

describe("GET /v1/deployments/:hash/logs (by hash, as before)", () => {
  test("reads the service's journal with the asked line count", async () => {
    const r = await get(`/v1/deployments/${H}/logs?lines=7`);
    expect(r).toEqual({
      status: 200,
      body: { hash: H, unit: `hashd-${H}.service`, lines: ["2025-01-01T00:00:00+0000 a web[1]: up"] },
    });
    expect(asked).toEqual([[`hashd-${H}.service`, 7, "short-iso"]]);
  });

  test.each([
    [`/v1/deployments/${H}/logs?lines=0`, 400],
    [`/v1/deployments/${H}/logs?lines=10001`, 400],
    [`/v1/deployments/${H.replace("0", "9")}/logs`, 404],
    ["/v1/deployments/..%2Fetc/logs", 400],
    ["/v1/deployments/prod/logs", 400],
  ])("%s answers %d and reads nothing", async (path, status) => {
    expect((await get(path)).status).toBe(status);
    expect(asked).toEqual([]);
  });
});

describe("GET /v1/logs/:name (hash or alias)", () => {
  test("an alias resolves through the alias table to its hash's journal", async () => {
    const r = await get("/v1/logs/prod?lines=3");
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      name: "prod",
      hash: H,
      alias: "prod",
      unit: `hashd-${H}.service`,
      lines: ["2025-01-01T00:00:00+0000 a web[1]: up"],
    });
    expect(asked).toEqual([[`hashd-${H}.service`, 3, "short-iso"]]);
  });

  test("a hash is taken as it is; the default is 50 lines", async () => {
    const r = await get(`/v1/logs/${H}`);
    expect(r.body).toMatchObject({ name: H, hash: H, alias: null });
    expect(asked).toEqual([[`hashd-${H}.service`, 50, "short-iso"]]);
  });

  test("a proxied hash's journal is its program's unit and its proxy's", async () => {
    const r = await get("/v1/logs/api?lines=5");
    expect(r.body.unit).toEqual([`hashd-${P}-app.service`, `hashd-${P}.service`]);
    expect(asked).toEqual([[[`hashd-${P}-app.service`, `hashd-${P}.service`], 5, "short-iso"]]);
  });

  test("lines=0 names the hash and units and reads no journal (--follow runs journalctl itself)", async () => {
    const r = await get("/v1/logs/prod?lines=0");
    expect(r.body).toEqual({ name: "prod", hash: H, alias: "prod", unit: `hashd-${H}.service`, lines: [] });
    expect(asked).toEqual([]);
  });

  test.each([
    ["staging", 404, /^no alias named staging$/],
    ["Prod", 400, /"Prod" is neither a store hash .* nor an alias name/],
    ["-x", 400, /neither a store hash/],
    ["a.b", 400, /neither a store hash/],
    ["e".repeat(32), 400, /malformed hash "e{32}"/],
    [H.replace("0", "9"), 404, /^hash 9c7v\w+ is not known on this host$/],
    [
      "gone",
      404,
      /^alias gone points at 2c7v\w+, which is not known on this host \(it runs on b: ask there with --host\)$/,
    ],
  ])("%s answers %d with a clear message and reads nothing", async (name, status, message) => {
    const r = await get(`/v1/logs/${encodeURIComponent(name)}`);
    expect(r.status).toBe(status);
    expect(r.body.error?.message).toMatch(message);
    expect(asked).toEqual([]);
  });

  test.each([
    ["-1", 400],
    ["1.5", 400],
    ["10001", 400],
    ["lots", 400],
    ["10000", 200],
  ])("lines=%s answers %d", async (lines, status) => {
    expect((await get(`/v1/logs/prod?lines=${lines}`)).status).toBe(status);
  });
});
