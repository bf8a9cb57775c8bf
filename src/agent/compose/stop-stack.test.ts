import { describe, expect, test } from "bun:test";
import { LocalChanges } from "./local-changes.ts";
import { StopStack } from "./stop-stack.ts";

describe("StopStack", () => {
  test("stops last pushed first, each waited for", async () => {
    const ran: string[] = [];
    const stops = new StopStack(() => {});
    stops.push("store", () => ran.push("store"));
    stops.push("cluster", async () => {
      await Bun.sleep(5);
      ran.push("cluster");
    });
    stops.push("ingress", () => ran.push("ingress"));
    expect(stops.names()).toEqual(["store", "cluster", "ingress"]);
    await stops.stopAll();
    expect(ran).toEqual(["ingress", "cluster", "store"]);
    expect(stops.names()).toEqual([]);
  });

  test("a stop that throws or rejects is logged, and the ones below it still run", async () => {
    const ran: string[] = [];
    const logged: string[] = [];
    const stops = new StopStack((m) => logged.push(m));
    stops.push("store", () => ran.push("store"));
    stops.push("cluster", async () => {
      throw new Error("leave timed out");
    });
    stops.push("status page", () => ran.push("status page"));
    stops.push("ingress", () => {
      throw new Error("already stopped");
    });
    await stops.stopAll();
    expect(ran).toEqual(["status page", "store"]);
    expect(logged).toHaveLength(2);
    expect(logged[0]).toStartWith("stopping ingress failed: Error: already stopped");
    expect(logged[1]).toStartWith("stopping cluster failed: Error: leave timed out");
  });

  test("runs each stop once: a second stopAll waits for the first; a push after it is refused", async () => {
    let count = 0;
    let release = () => {};
    const stops = new StopStack(() => {});
    stops.push("slow", () => new Promise<void>((r) => (release = r)).then(() => count++));
    const first = stops.stopAll();
    let secondDone = false;
    const second = stops.stopAll().then(() => (secondDone = true));
    await Bun.sleep(5);
    expect(secondDone).toBe(false);
    release();
    await Promise.all([first, second]);
    await stops.stopAll();
    expect(count).toBe(1);
    expect(() => stops.push("late", () => {})).toThrow("late: pushed onto a stop stack that is stopping");
  });
});

describe("LocalChanges", () => {
  test("a deployment's change reaches its followers in order, then the report's", () => {
    const seen: string[] = [];
    const changes = new LocalChanges();
    const d = { hash: "h" } as Parameters<LocalChanges["deploymentChanged"]>[0];
    changes.deploymentChanged(d); // before anyone follows (reconcile): nothing to reach
    changes.onDeployment((x) => seen.push(`routes ${x.hash}`));
    changes.onDeployment((x) => seen.push(`scaler ${x.hash}`));
    changes.onReport(() => seen.push("publish"));
    changes.deploymentChanged(d);
    changes.reportChanged();
    expect(seen).toEqual(["routes h", "scaler h", "publish", "publish"]);
  });
});
