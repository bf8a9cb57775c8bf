/**
 * A job's hold outlives a kill -9 of the agent (issue 5): one sandbox host running the agent with
 * a quiet period of 1 s. v1 of a service is aliased, a hold is taken on it, the alias moves to
 * v2, and the agent is killed and restarted by systemd: v1 stays draining, kept by the restored
 * hold, the hold renews under its old id, and v1 retires only once the hold is released.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { hashd, hashdJson, holdsApi, installAgent, waitFor } from "./agent-host.ts";
import { type Host, Sandbox } from "./harness.ts";
import { serviceExpr } from "./service-closures.ts";

setDefaultTimeout(180_000);

let sb: Sandbox;
let a: Host;
let v1: string;
let v2: string;

interface Event {
  at: number;
  kind: string;
  message: string;
}

interface HoldView {
  id: string;
  hash: string;
  ttlSec: number;
  expiresAt: string;
}

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a"] });
  a = sb.host("a");
  await installAgent(a, { config: { zone: "test", quietSec: 1 } });
  for (const version of ["1", "2"]) {
    const path = await a.nixBuild(serviceExpr({ name: "held", version }));
    await hashdJson(a, ["activate", path, "--wait"]);
    if (version === "1") v1 = path.slice(11, 43);
    else v2 = path.slice(11, 43);
  }
}, 300_000);

afterAll(async () => {
  await sb?.destroy();
});

/** The holds API as v1's service calls it. */
const v1Holds = (method: "GET" | "POST" | "DELETE", path: string, body?: unknown) =>
  holdsApi(a, v1, method, path, body);

async function shown(hash: string): Promise<{ state: string; events: Event[] }> {
  const r = await hashdJson<{ deployment: { state: string }; events: Event[] }>(a, ["show", hash]);
  return { state: r.deployment.state, events: r.events };
}

describe("holds survive an agent restart", () => {
  test("kill -9 of the agent: the hold is restored, keeps its hash from retiring, renews, and releases", async () => {
    await hashdJson(a, ["alias", "set", `app=${v1}`]);
    await waitFor("v1 marked wanted", async () => (await shown(v1)).events.some((e) => e.kind === "wanted"));
    const acquired = await v1Holds("POST", "/v1/holds", { hash: v1, ttlSec: 60 });
    expect(acquired.status).toBe(201);
    const hold = JSON.parse(acquired.body) as HoldView;

    await hashdJson(a, ["alias", "set", `app=${v2}`]);
    await waitFor(
      "v1 draining, kept by the hold",
      async () => {
        const s = await shown(v1);
        return (
          s.state === "draining" && s.events.some((e) => e.kind === "kept" && e.message.includes("hold"))
        );
      },
      20_000,
    );

    const pidBefore = (
      await a.run(["systemctl", "show", "--property=MainPID", "--value", "hashd.service"])
    ).trim();
    const killedAt = Date.now();
    await a.run(["systemctl", "kill", "--signal=KILL", "hashd.service"]);
    await waitFor("agent restarted by systemd", async () => {
      const pid = (
        await a.run(["systemctl", "show", "--property=MainPID", "--value", "hashd.service"])
      ).trim();
      return pid !== "0" && pid !== pidBefore && (await hashd(a, ["list", "--json"])).code === 0;
    });

    // the restarted agent holds the same lease (its journal in the database) ...
    const listed = await v1Holds("GET", `/v1/holds?hash=${v1}`);
    expect(listed.status).toBe(200);
    expect((JSON.parse(listed.body) as { holds: HoldView[] }).holds.map((h) => h.id)).toEqual([hold.id]);
    // ... and it keeps v1 from retiring, well past the 1 s quiet period
    await Bun.sleep(6000);
    const kept = await shown(v1);
    expect(kept.state).toBe("draining");
    // the new process's retirer says why (its first verdict is recorded as an event)
    expect(
      kept.events.some((e) => e.kind === "kept" && e.message.includes("1 hold(s)") && e.at >= killedAt),
    ).toBe(true);

    // the job renews under its old id, then releases: v1 retires
    const renewed = await v1Holds("POST", `/v1/holds/${hold.id}/renew`);
    expect(renewed.status).toBe(200);
    expect(Date.parse((JSON.parse(renewed.body) as HoldView).expiresAt)).toBeGreaterThan(Date.now());
    expect((await v1Holds("DELETE", `/v1/holds/${hold.id}`)).status).toBe(204);
    await waitFor(
      "v1 retired once the hold is released",
      async () => (await shown(v1)).state === "retired",
      30_000,
    );
    expect((await shown(v2)).state).not.toBe("retired");
  });
});
