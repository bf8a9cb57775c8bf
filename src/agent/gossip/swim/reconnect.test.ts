import { describe, expect, test } from "bun:test";
import { addr, fakeRuntimeNode, packet, T0 } from "../../../../test/support/gossip/fake-runtime.ts";
import { decodeStream } from "../wire/codec-stream.ts";
import { T } from "../wire/messages.ts";
import { type ReconnectView, reconnectPlan } from "./reconnect.ts";

const first = () => 0;
const view = (v: Partial<ReconnectView>): ReconnectView => ({
  self: addr(0),
  members: [{ addr: addr(0), status: "alive" }],
  buried: [],
  seeds: [],
  ...v,
});

describe("reconnectPlan (Serf's reconnect, plus the seeds)", () => {
  test("alone: every seed but ourselves, and a failed member", () => {
    const plan = reconnectPlan(
      view({
        members: [
          { addr: addr(0), status: "alive" },
          { addr: addr(3), status: "dead" },
        ],
        seeds: [addr(0), addr(1), addr(2)],
      }),
      0.5,
      first,
    );
    // and the dead member (odds failed / alive = 1 / 1)
    expect(plan).toEqual({ alone: true, join: [addr(3), addr(1), addr(2)] });
  });

  test("a failed member is tried with Serf's odds: failed / alive (ourselves counted)", () => {
    const v = view({
      members: [
        { addr: addr(0), status: "alive" },
        { addr: addr(1), status: "alive" },
        { addr: addr(2), status: "suspect" },
        { addr: addr(3), status: "dead" },
        { addr: addr(4), status: "left" },
      ],
      buried: [
        { addr: addr(5), left: false },
        { addr: addr(6), left: true },
      ],
    });
    // failed: 3 (dead) and 5 (reaped, tombstone kept); left ones never; alive: 0, 1, 2
    expect(reconnectPlan(v, 0.66, first)).toEqual({ alone: false, join: [addr(3)] });
    expect(reconnectPlan(v, 0.66, (n) => n - 1)).toEqual({ alone: false, join: [addr(5)] });
    expect(reconnectPlan(v, 0.67, first)).toEqual({ alone: false, join: [] });
  });

  test("an address an alive member now has is not a failed one (a restart under another name)", () => {
    const v = view({
      members: [
        { addr: addr(0), status: "alive" },
        { addr: addr(1), status: "dead" },
        { addr: addr(1), status: "alive" },
      ],
      buried: [{ addr: addr(1), left: false }],
    });
    expect(reconnectPlan(v, 0, first)).toEqual({ alone: false, join: [] });
  });

  test("one seed that is not an alive or suspect member, besides the failed member", () => {
    const v = view({
      members: [
        { addr: addr(0), status: "alive" },
        { addr: addr(1), status: "alive" },
        { addr: addr(2), status: "suspect" },
        { addr: addr(3), status: "dead" },
      ],
      seeds: [addr(1), addr(2), addr(3), addr(7)],
    });
    expect(reconnectPlan(v, 0.99, first)).toEqual({ alone: false, join: [addr(3)] });
    // the failed member drawn is a seed too: the seed pick goes to another one
    expect(reconnectPlan(v, 0, first)).toEqual({ alone: false, join: [addr(3), addr(7)] });
    expect(reconnectPlan(view({ ...v, seeds: [addr(1), addr(2)] }), 0.99, first).join).toEqual([]);
  });
});

describe("the reconnect timer in the core", () => {
  const joinsIn = (streams: { to: string; request: Uint8Array }[]) =>
    streams.filter((s) => {
      const d = decodeStream(s.request, 1 << 20);
      return d.ok && d.value.t === T.pushPull && d.value.join;
    });

  test("alone, the seeds are joined again every 2 s; once others are alive, every 30 s on average", () => {
    const { rt, node } = fakeRuntimeNode(0);
    expect(node.join([addr(1), addr(2)], T0)).toBe(2);
    expect(joinsIn(rt.streams).map((s) => s.to)).toEqual([addr(1), addr(2)]);
    const retry = rt.timers.filter((t) => t.timer.kind === "reconnect").at(-1);
    expect(retry?.afterMs).toBeGreaterThanOrEqual(2000);
    expect(retry?.afterMs).toBeLessThan(2500);
    rt.streams = [];
    node.handleTimer(rt.lastTimer("reconnect"), T0 + 2200);
    expect(joinsIn(rt.streams).map((s) => s.to)).toEqual([addr(1), addr(2)]);
    expect(rt.timers.filter((t) => t.timer.kind === "reconnect").at(-1)?.afterMs).toBe(2000);
    // a member is alive now (the join, or someone's gossip, reached us)
    node.handlePacket(
      addr(2),
      packet({ t: T.alive, name: "n2", addr: addr(2), inc: 10, boot: 10 }),
      T0 + 3000,
    );
    rt.streams = [];
    node.handleTimer(rt.lastTimer("reconnect"), T0 + 4200);
    // the one seed that is not alive is tried; the next tick is Serf's interval away
    expect(joinsIn(rt.streams).map((s) => s.to)).toEqual([addr(1)]);
    const next = rt.timers.filter((t) => t.timer.kind === "reconnect").at(-1)?.afterMs ?? 0;
    expect(next).toBeGreaterThanOrEqual(15_000);
    expect(next).toBeLessThan(45_000);
  });

  test("a member we think dead is joined again (its reply makes it refute)", () => {
    const { rt, node } = fakeRuntimeNode(1);
    node.handlePacket(addr(1), packet({ t: T.dead, name: "n1", inc: 10, from: "n9" }), T0 + 1);
    expect(node.memberStatus("n1")).toBe("dead");
    // failed 1, alive 1 (ourselves): the odds are 1
    node.handleTimer(rt.lastTimer("reconnect"), T0 + 30_000);
    expect(joinsIn(rt.streams).map((s) => s.to)).toEqual([addr(1)]);
  });

  test("a leaving member does not reconnect", () => {
    const { rt, node } = fakeRuntimeNode(0);
    node.join([addr(1)], T0);
    node.leave(T0 + 1);
    rt.streams = [];
    node.handleTimer(rt.lastTimer("reconnect"), T0 + 2500);
    expect(rt.streams).toEqual([]);
  });
});
