import { beforeEach, describe, expect, test } from "bun:test";
import { inertActivator } from "../../../test/fakes/inert-activator.ts";
import { HashdError } from "../../lib/errors.ts";
import { parseManifest } from "../../model/manifest.ts";
import { AliasService } from "../aliases/alias-service.ts";
import { LocalAliasBackend } from "../aliases/local-backend.ts";
import type { RestartDrain } from "../lifecycle/restart.ts";
import { StateStore } from "../state/store.ts";
import { controlApi } from "./api.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const ELSEWHERE = "2c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6"; // runs on another member only

let store: StateStore;
let asked: [string, RestartDrain][];
let failWith: HashdError | undefined;
const drain: RestartDrain = {
  gate: { close: () => {}, open: () => {}, isClosed: () => false },
  inflight: { count: () => 0 },
  dropIdleUpstreams: () => {},
};

function api(withDrain: boolean) {
  const activator = inertActivator(store);
  activator.restart = async (hash, d) => {
    asked.push([hash, d]);
    if (failWith) throw failWith;
    const deployment = store.get(hash);
    if (!deployment) throw new Error("unreachable");
    return { deployment, restarted: true, drained: 3, cut: 0, heldMs: 12 };
  };
  const aliases = new AliasService(new LocalAliasBackend("a"), store.db);
  aliases.set({ prod: H, gone: ELSEWHERE });
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
  return controlApi(
    {
      store,
      activator,
      version: "t",
      aliases: { aliases, isLive: () => true },
      cluster,
      ...(withDrain ? { drain } : {}),
    },
    () => {},
  );
}

beforeEach(() => {
  store = new StateStore(":memory:");
  store.beginActivation(
    `/nix/store/${H}-api`,
    H,
    parseManifest({ schema: 1, name: "api", exec: ["/bin/true"], credentials: ["db-url"] }),
    "test",
  );
  asked = [];
  failWith = undefined;
});

const post = async (app: ReturnType<typeof controlApi>, name: string) => {
  const r = await app.request(`/v1/restart/${encodeURIComponent(name)}`, { method: "POST" });
  return {
    status: r.status,
    body: (await r.json()) as Record<string, unknown> & { error?: { code: string; message: string } },
  };
};

describe("POST /v1/restart/:name", () => {
  test("an alias is resolved as the ingress resolves it, and the hash restarted with the ingress's drain", async () => {
    const r = await post(api(true), "prod");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      name: "prod",
      hash: H,
      alias: "prod",
      restarted: true,
      drained: 3,
      cut: 0,
    });
    expect((r.body.deployment as { url: string }).url).toBe(`http://${H}.localhost/`);
    expect(asked).toEqual([[H, drain]]);
    expect((await post(api(true), H)).body).toMatchObject({ hash: H, alias: null });
  });

  test("malformed names, unknown aliases and hashes this host does not run are refused before anything", async () => {
    const app = api(true);
    expect((await post(app, "Bad_Name")).status).toBe(400);
    expect((await post(app, `${H.slice(0, 31)}e`)).status).toBe(400);
    expect((await post(app, "nope")).status).toBe(404);
    const elsewhere = await post(app, "gone");
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.body.error?.message).toContain("it runs on b");
    expect(asked).toEqual([]);
  });

  test("a credential file gone: 422 missing_credential, which the CLI exits 3 with", async () => {
    failWith = new HashdError(
      "missing_credential",
      "service api, credential db-url: /run/keys/db-url does not exist",
    );
    const r = await post(api(true), "prod");
    expect(r.status).toBe(422);
    expect(r.body.error?.code).toBe("missing_credential");
    expect(HashdError.fromJSON(r.body, r.status).exitCode).toBe(3);
  });

  test("an agent whose wiring gives no drain has no such route (it would restart under requests)", async () => {
    expect((await post(api(false), "prod")).status).toBe(404);
  });
});
