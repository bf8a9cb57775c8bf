import { describe, expect, test } from "bun:test";
import { AliasService } from "../aliases/alias-service.ts";
import { LocalAliasBackend } from "../aliases/local-backend.ts";
import type { Cluster } from "../cluster/cluster.ts";
import { RequestStats } from "../ingress/index.ts";
import type { MemberView } from "../retirement/planner.ts";
import { StateStore } from "../state/store.ts";
import type { AgentState } from "./open-state.ts";
import { rolloutIo } from "./rollout-io.ts";

/** A cluster whose members and push-pull count the test sets. */
function fakeCluster(members: string[], syncs: { n: number; asked: number }): Cluster {
  return {
    self: "a",
    members: (): MemberView[] => members.map((name) => ({ name, status: "alive", hashes: [] })),
    aliasSyncs: () => syncs.n,
    syncAliases: () => {
      syncs.asked++;
    },
  } as unknown as Cluster;
}

describe("rollout-io: a member behind the cluster elects nobody until a push-pull brought the aliases", () => {
  test("after a start, and again after it saw no majority", async () => {
    const store = new StateStore(":memory:");
    store.setKnownMembers(["a", "b", "c"]);
    const state = { store, requestStats: new RequestStats(), report: () => [] } as unknown as AgentState;
    const members = ["a", "b", "c"];
    const syncs = { n: 0, asked: 0 };
    const aliases = new AliasService(new LocalAliasBackend("a"), store.db);
    const io = rolloutIo(state, fakeCluster(members, syncs), aliases);
    const later = () => Bun.sleep(120); // the view is read again after 100 ms
    // just started: a majority in view, but no table from a peer yet
    expect(io.aliveMembers()).toEqual([]);
    expect(syncs.asked).toBe(1);
    syncs.n = 1;
    await later();
    expect(io.aliveMembers()).toEqual(["a", "b", "c"]);
    // cut off: no majority
    members.splice(1);
    await later();
    expect(io.aliveMembers()).toEqual([]);
    // healed: still behind until the next push-pull
    members.push("b", "c");
    await later();
    expect(io.aliveMembers()).toEqual([]);
    syncs.n = 2;
    await later();
    expect(io.aliveMembers()).toEqual(["a", "b", "c"]);
    expect(io.knownMemberCount()).toBe(3);
  });
});
