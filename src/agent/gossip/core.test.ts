import { describe, expect, test } from "bun:test";
import { addr, packet, fakeRuntimeNode as setup, T0 } from "../../../test/support/gossip/fake-runtime.ts";
import { fakeHash, fakeState } from "../../../test/support/gossip/fixtures.ts";
import { HashdError } from "../../lib/errors.ts";
import { encodeMessage } from "./wire/codec.ts";
import { type PacketMessage, T } from "./wire/messages.ts";

describe("GossipNode: failure detection", () => {
  test("answers a ping with an ack naming itself; ignores a ping meant for another name", () => {
    const { rt, node } = setup(1);
    node.handlePacket(addr(1), packet({ t: T.ping, seq: 77, to: "me" }), T0 + 1);
    expect(rt.sent[0]?.to).toBe(addr(1));
    expect(rt.sent[0]?.messages[0]).toEqual({ t: T.ack, seq: 77, from: "me", inc: T0, boot: T0 });
    node.handlePacket(addr(1), packet({ t: T.ping, seq: 78, to: "someone-else" }), T0 + 2);
    expect(rt.sent.length).toBe(1);
    expect(node.stats().misaddressedPings).toBe(1);
  });

  test("probe -> no ack -> ping-req through helpers -> suspect; health score rises", () => {
    const { rt, node } = setup(3);
    node.handleTimer(rt.lastTimer("probe"), T0 + 1000);
    const ping = rt.sent.find((s) => s.messages[0]?.t === T.ping)?.messages[0] as { to: string; seq: number };
    expect(ping).toBeDefined();
    const { to: target, seq } = ping;
    node.handleTimer(rt.lastTimer("probe-timeout"), T0 + 1500);
    const reqs = rt.sent.filter((s) => s.messages[0]?.t === T.pingReq);
    expect(reqs.length).toBe(2); // the two other members
    for (const r of reqs) expect(r.messages[0]).toMatchObject({ seq, target, nack: true });
    // the TCP fallback ping goes out too (memberlist), and gets no answer here
    expect(rt.streams.at(-1)?.to).toBe(rt.sent.find((s) => s.messages[0]?.t === T.ping)?.to as string);
    // one helper nacks, the other says nothing: health +1 (one missing nack)
    node.handlePacket(reqs[0]?.to as string, packet({ t: T.nack, seq }), T0 + 1600);
    node.handleTimer(rt.lastTimer("probe"), T0 + 2000);
    expect(rt.events.some((e) => e.type === "member-suspect" && e.member.name === target)).toBe(true);
    expect(node.memberStatus(target)).toBe("suspect");
    expect(node.healthScore).toBe(1);
  });

  test("an ack counts only for the outstanding probe and the member probed", () => {
    const { rt, node } = setup(2);
    node.handleTimer(rt.lastTimer("probe"), T0 + 1000);
    const ping = rt.sent.find((s) => s.messages[0]?.t === T.ping)?.messages[0] as { seq: number; to: string };
    const other = ping.to === "n1" ? "n2" : "n1";
    node.handlePacket(
      addr(9),
      packet({ t: T.ack, seq: ping.seq + 1, from: ping.to, inc: 10, boot: 10 }),
      T0 + 1001,
    ); // not outstanding
    node.handlePacket(
      addr(9),
      packet({ t: T.ack, seq: ping.seq, from: other, inc: 10, boot: 10 }),
      T0 + 1002,
    ); // wrong member
    expect(node.stats().staleAcks).toBe(2);
    node.handlePacket(
      addr(1),
      packet({ t: T.ack, seq: ping.seq, from: ping.to, inc: 10, boot: 10 }),
      T0 + 1003,
    );
    node.handlePacket(
      addr(1),
      packet({ t: T.ack, seq: ping.seq, from: ping.to, inc: 10, boot: 10 }),
      T0 + 1004,
    ); // replay
    expect(node.stats().staleAcks).toBe(3);
    node.handleTimer(rt.lastTimer("probe"), T0 + 2000);
    expect(node.memberStatus(ping.to)).toBe("alive");
    expect(node.healthScore).toBe(0);
  });

  test("relays a ping-req and forwards the ack, or nacks early enough for the requester to count it", () => {
    const { rt, node } = setup(2);
    node.handlePacket(
      addr(1),
      packet({ t: T.pingReq, seq: 5, target: "n2", targetAddr: addr(2), nack: true }),
      T0,
    );
    const relayPing = rt.sent.find((s) => s.to === addr(2))?.messages[0] as { seq: number };
    expect(relayPing).toMatchObject({ t: T.ping, to: "n2" });
    node.handlePacket(
      addr(2),
      packet({ t: T.ack, seq: relayPing.seq, from: "n2", inc: 10, boot: 10 }),
      T0 + 5,
    );
    expect(rt.sent.at(-1)?.to).toBe(addr(1));
    expect(rt.sent.at(-1)?.messages[0]).toEqual({ t: T.ack, seq: 5, from: "n2", inc: 10, boot: 10 });
    rt.clear();
    rt.timers = [];
    node.handlePacket(
      addr(1),
      packet({ t: T.pingReq, seq: 6, target: "n2", targetAddr: addr(2), nack: true }),
      T0 + 10,
    );
    // The requester asked 500 ms into a probe that ends at 1,000 ms: a nack after a whole probe
    // timeout would arrive just too late to count, so it goes at 80% of it.
    const nackTimer = rt.timers.find((t) => t.timer.kind === "relay-nack");
    expect(nackTimer?.afterMs).toBe(400);
    node.handleTimer(rt.lastTimer("relay-nack"), T0 + 410);
    expect(rt.sent.at(-1)?.to).toBe(addr(1));
    expect(rt.sent.at(-1)?.messages[0]).toEqual({ t: T.nack, seq: 6 });
    // a late ack is still relayed until the whole probe timeout
    const relayed = rt.sent.find((s) => s.to === addr(2))?.messages[0] as { seq: number };
    const seq = relayed.seq;
    node.handlePacket(addr(2), packet({ t: T.ack, seq, from: "n2", inc: 10, boot: 10 }), T0 + 450);
    expect(rt.sent.at(-1)?.messages[0]).toEqual({ t: T.ack, seq: 6, from: "n2", inc: 10, boot: 10 });
    expect(rt.sent.filter((s) => s.messages[0]?.t === T.nack).length).toBe(1);
  });

  test("a probe of a member that is gone does not lower our health when the helpers nack in time", () => {
    const { rt, node } = setup(3);
    node.handleTimer(rt.lastTimer("probe"), T0 + 1000);
    const ping = rt.sent.find((s) => s.messages[0]?.t === T.ping)?.messages[0] as { seq: number };
    const seq = ping.seq;
    node.handleTimer(rt.lastTimer("probe-timeout"), T0 + 1500);
    const helpers = rt.sent.filter((s) => s.messages[0]?.t === T.pingReq).map((s) => s.to);
    expect(helpers.length).toBe(2);
    for (const h of helpers) node.handlePacket(h, packet({ t: T.nack, seq }), T0 + 1910);
    node.handleTimer(rt.lastTimer("probe"), T0 + 2000);
    expect(node.healthScore).toBe(0);
  });

  test("a refused fallback ping (nothing listens) suspects at once; a timed-out one waits for the probe's end", () => {
    for (const refused of [true, false]) {
      const { rt, node } = setup(3);
      node.handleTimer(rt.lastTimer("probe"), T0 + 1000);
      const ping = rt.sent.find((s) => s.messages[0]?.t === T.ping)?.messages[0] as { to: string };
      node.handleTimer(rt.lastTimer("probe-timeout"), T0 + 1500);
      const fallback = rt.streams.at(-1) as { token: number };
      node.handleStreamFailure(fallback.token, T0 + 1502, refused);
      expect(node.memberStatus(ping.to)).toBe(refused ? "suspect" : "alive");
      expect(node.stats().refusedPings).toBe(refused ? 1 : 0);
      node.handleTimer(rt.lastTimer("probe"), T0 + 2000);
      expect(node.memberStatus(ping.to)).toBe("suspect");
      expect(rt.events.filter((e) => e.type === "member-suspect").length).toBe(1);
    }
  });

  test("a refused fallback ping after an ack changes nothing", () => {
    const { rt, node } = setup(1);
    node.handleTimer(rt.lastTimer("probe"), T0 + 1000);
    const ping = rt.sent.find((s) => s.messages[0]?.t === T.ping)?.messages[0] as { seq: number; to: string };
    node.handleTimer(rt.lastTimer("probe-timeout"), T0 + 1500);
    node.handlePacket(
      addr(1),
      packet({ t: T.ack, seq: ping.seq, from: ping.to, inc: 10, boot: 10 }),
      T0 + 1501,
    );
    node.handleStreamFailure((rt.streams.at(-1) as { token: number }).token, T0 + 1502, true);
    expect(node.memberStatus(ping.to)).toBe("alive");
  });
});

describe("GossipNode: membership", () => {
  test("refutes a suspicion about itself with a higher incarnation", () => {
    const { rt, node } = setup(1);
    node.handlePacket(addr(1), packet({ t: T.suspect, name: "me", inc: T0, from: "n1" }), T0 + 5);
    expect(node.stats().refutations).toBe(1);
    node.handleTimer(rt.lastTimer("gossip"), T0 + 200);
    const alive = rt.sent.flatMap((s) => s.messages).find((m) => m.t === T.alive && m.name === "me");
    expect(alive).toMatchObject({ inc: T0 + 1 });
    expect(node.members().find((m) => m.name === "me")?.state).toBe("alive");
  });

  test("suspicion expires: one last probe ending at the deadline, then dead; a higher incarnation revives", () => {
    const { rt, node } = setup(2);
    node.handlePacket(addr(2), packet({ t: T.suspect, name: "n1", inc: 10, from: "n2" }), T0);
    // 3 members, too few to confirm: the minimum suspicion time at once (4 s); the recheck
    // starts one probe interval before it
    const recheckAt = rt.timers.filter((t) => t.timer.kind === "suspicion").at(-1)?.afterMs;
    expect(recheckAt).toBe(3000);
    rt.clear();
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 3000);
    const ping = rt.sent.find((s) => s.messages[0]?.t === T.ping);
    expect(ping?.to).toBe(addr(1)); // beside the probe round, not in its order
    expect(ping?.messages[1]).toMatchObject({ t: T.suspect, name: "n1" }); // buddy: it learns
    expect(node.memberStatus("n1")).toBe("suspect");
    node.handleTimer(rt.lastTimer("probe-timeout"), T0 + 3500); // no ack: helpers and TCP
    expect(rt.sent.filter((s) => s.messages[0]?.t === T.pingReq).map((s) => s.to)).toEqual([addr(2)]);
    expect(rt.timers.filter((t) => t.timer.kind === "suspicion").at(-1)?.afterMs).toBe(1000);
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 4000); // the deadline, no answer
    expect(node.memberStatus("n1")).toBe("dead");
    node.handlePacket(
      addr(1),
      packet({ t: T.alive, name: "n1", addr: addr(1), inc: 10, boot: 10 }),
      T0 + 4001,
    );
    expect(node.memberStatus("n1")).toBe("dead"); // same incarnation: no
    node.handlePacket(
      addr(1),
      packet({ t: T.alive, name: "n1", addr: addr(1), inc: 11, boot: 10 }),
      T0 + 4002,
    );
    expect(node.memberStatus("n1")).toBe("alive");
    node.handleTimer({ kind: "suspicion", name: "n1", token: 1 }, T0 + 40_000); // stale
    expect(node.memberStatus("n1")).toBe("alive");
  });

  test("a suspect that refuted is seen alive through its recheck ack, even if the refutation was lost", () => {
    const { rt, node } = setup(2);
    node.handlePacket(addr(2), packet({ t: T.suspect, name: "n1", inc: 10, from: "n2" }), T0);
    rt.clear();
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 3000);
    const ping = rt.sent.find((s) => s.to === addr(1))?.messages[0] as { seq: number };
    node.handlePacket(addr(1), packet({ t: T.ack, seq: ping.seq, from: "n1", inc: 11, boot: 10 }), T0 + 3005);
    expect(node.memberStatus("n1")).toBe("alive"); // at once, not at the deadline
    expect(node.members().find((m) => m.name === "n1")?.incarnation).toBe(11);
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 4000);
    expect(node.memberStatus("n1")).toBe("alive");
  });

  test("a suspect that answers its recheck without refuting yet gets the minimum time again", () => {
    const { rt, node } = setup(2);
    node.handlePacket(addr(2), packet({ t: T.suspect, name: "n1", inc: 10, from: "n2" }), T0);
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 3000);
    const ping = rt.sent.filter((s) => s.to === addr(1)).at(-1)?.messages[0] as { seq: number };
    node.handlePacket(addr(1), packet({ t: T.ack, seq: ping.seq, from: "n1", inc: 10, boot: 10 }), T0 + 3005);
    expect(node.memberStatus("n1")).toBe("suspect");
    // dead no sooner than 4 s after the answer; the next recheck starts 1 s before that
    expect(rt.timers.at(-1)).toEqual({
      afterMs: 3000,
      timer: { kind: "suspicion", name: "n1", token: rt.lastTimer("suspicion").token },
    });
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 4000); // the old deadline: nothing
    expect(node.memberStatus("n1")).toBe("suspect");
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 6005); // second recheck...
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 7005); // ... unanswered
    expect(node.memberStatus("n1")).toBe("dead");
  });

  test("a member repeating a refuted suspicion is sent the refutation", () => {
    const { rt, node } = setup(3);
    node.handlePacket(addr(1), packet({ t: T.alive, name: "n1", addr: addr(1), inc: 12, boot: 10 }), T0);
    rt.clear();
    node.handlePacket(addr(3), packet({ t: T.suspect, name: "n1", inc: 11, from: "n3" }), T0 + 1);
    expect(rt.sent[0]?.to).toBe(addr(3));
    expect(rt.sent[0]?.messages[0]).toMatchObject({ t: T.alive, name: "n1", inc: 12 });
    node.handlePacket(addr(3), packet({ t: T.suspect, name: "n1", inc: 11, from: "n3" }), T0 + 2);
    expect(rt.sent.length).toBe(1); // at most once a second
    expect(node.memberStatus("n1")).toBe("alive");
  });

  test("dead members are reaped after GossipToTheDeadTime; a replayed old alive cannot resurrect them", () => {
    const { rt, node } = setup(2);
    const oldAlive = packet({ t: T.alive, name: "n1", addr: addr(1), inc: 10, boot: 10 });
    node.handlePacket(addr(2), packet({ t: T.dead, name: "n1", inc: 10, from: "n2" }), T0);
    expect(node.memberStatus("n1")).toBe("dead");
    // reaping happens when the probe order wraps; walk it a few times, past 30 s
    for (let i = 1; i <= 6; i++) node.handleTimer(rt.lastTimer("probe"), T0 + 20_000 + i * 1000);
    expect(node.memberStatus("n1")).toBe("dead"); // still within GossipToTheDeadTime
    for (let i = 1; i <= 6; i++) node.handleTimer(rt.lastTimer("probe"), T0 + 31_000 + i * 1000);
    expect(node.memberStatus("n1")).toBeNull();
    expect(rt.events.some((e) => e.type === "member-reaped" && e.member.name === "n1")).toBe(true);
    node.handlePacket(addr(1), oldAlive, T0 + 40_000); // replayed
    expect(node.memberStatus("n1")).toBeNull();
    node.handlePacket(
      addr(1),
      packet({ t: T.alive, name: "n1", addr: addr(1), inc: 20, boot: 20 }),
      T0 + 41_000,
    );
    expect(node.memberStatus("n1")).toBe("alive"); // a restart is welcome
  });

  test("a dead message from the member itself is a graceful leave", () => {
    const { node, rt } = setup(1);
    node.handlePacket(addr(1), packet({ t: T.dead, name: "n1", inc: 10, from: "n1" }), T0);
    expect(node.memberStatus("n1")).toBe("left");
    expect(rt.events.at(-1)?.type).toBe("member-left");
  });

  test("leave announces itself left and stops probing", () => {
    const { node, rt } = setup(3);
    node.leave(T0 + 1);
    const dead = rt.sent.flatMap((s) => s.messages).find((m) => m.t === T.dead);
    expect(dead).toEqual({ t: T.dead, name: "me", inc: T0, from: "me" });
    rt.clear();
    node.handleTimer(rt.lastTimer("probe"), T0 + 1000);
    expect(rt.sent.some((s) => s.messages[0]?.t === T.ping)).toBe(false);
    node.handlePacket(addr(1), packet({ t: T.suspect, name: "me", inc: T0, from: "n1" }), T0 + 2);
    expect(node.stats().refutations).toBe(0);
  });
});

describe("GossipNode: app state", () => {
  const H = fakeHash(42);

  test("a newer report replaces an older one; a replayed or older one changes nothing", () => {
    const { node } = setup(1);
    const v2 = fakeState(42, 1, { salt: 2 });
    const v1 = fakeState(42, 1, { salt: 1 });
    node.handlePacket(
      addr(1),
      packet({ t: T.state, name: "n1", version: { boot: 10, seq: 2 }, state: v2 }),
      T0,
    );
    node.handlePacket(
      addr(1),
      packet({ t: T.state, name: "n1", version: { boot: 10, seq: 1 }, state: v1 }),
      T0 + 1,
    );
    node.handlePacket(
      addr(1),
      packet({ t: T.state, name: "n1", version: { boot: 10, seq: 2 }, state: v1 }),
      T0 + 2,
    );
    expect(node.memberState("n1")).toEqual(v2);
    expect(node.whoRuns(H)[0]?.report.inFlight).toBe(2);
    expect(node.stats().staleStates).toBe(2);
  });

  test("a restarted member's old reports vanish on its new boot and never come back", () => {
    const { node } = setup(1);
    node.handlePacket(
      addr(1),
      packet({ t: T.state, name: "n1", version: { boot: 10, seq: 9 }, state: fakeState(42, 1) }),
      T0,
    );
    expect(node.whoRuns(H).length).toBe(1);
    node.handlePacket(addr(1), packet({ t: T.alive, name: "n1", addr: addr(1), inc: 20, boot: 20 }), T0 + 1);
    expect(node.whoRuns(H)).toEqual([]);
    expect(node.stateVersionOf("n1")).toBeNull();
    node.handlePacket(
      addr(1),
      packet({ t: T.state, name: "n1", version: { boot: 10, seq: 99 }, state: fakeState(42, 1) }),
      T0 + 2,
    );
    expect(node.whoRuns(H)).toEqual([]);
  });

  test("whoRuns leaves out dead members", () => {
    const { node, rt } = setup(2);
    node.handlePacket(
      addr(1),
      packet({ t: T.state, name: "n1", version: { boot: 10, seq: 1 }, state: fakeState(42, 1) }),
      T0,
    );
    expect(node.whoRuns(H).map((r) => r.member.name)).toEqual(["n1"]);
    node.handlePacket(addr(2), packet({ t: T.suspect, name: "n1", inc: 10, from: "n2" }), T0);
    expect(node.whoRuns(H).map((r) => r.member.state)).toEqual(["suspect"]);
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 3000); // the last-chance probe
    node.handleTimer(rt.lastTimer("suspicion"), T0 + 4000); // unanswered
    expect(node.memberStatus("n1")).toBe("dead");
    expect(node.whoRuns(H)).toEqual([]);
  });

  test("local state: validated, versioned, published (inline when small, by version when large)", () => {
    const { node, rt } = setup(1);
    expect(() =>
      node.setLocalState({ hashes: [{ hash: "nope", state: "ready", inFlight: 0, holds: 0, refs: [] }] }, T0),
    ).toThrow(HashdError);
    node.setLocalState(fakeState(42, 1), T0 + 1);
    expect(node.stateVersionOf("me")).toEqual({ boot: T0, seq: 1 });
    node.handleTimer(rt.lastTimer("gossip"), T0 + 200);
    // a small state rides in our own alive, like memberlist's node meta
    const alive = rt.sent.flatMap((s) => s.messages).find((m) => m.t === T.alive && m.name === "me");
    expect(alive).toMatchObject({ state: { version: { boot: T0, seq: 1 }, state: fakeState(42, 1) } });
    rt.clear();
    node.setLocalState(fakeState(100, 40, { refs: 2 }), T0 + 1000);
    node.handleTimer(rt.lastTimer("gossip"), T0 + 1200);
    const msgs = rt.sent.flatMap((s) => s.messages);
    expect(msgs.some((m) => m.t === T.stateVer && m.name === "me")).toBe(true);
    // the large state itself is never gossiped whole (peers fetch it)
    const whole = msgs.filter((m) => (m.t === T.state || (m.t === T.alive && m.state)) && m.name === "me");
    expect(whole.every((m) => m.t === T.alive && m.state?.version.seq === 1)).toBe(true);
  });

  test("news goes out in an extra round a few ms after it is queued, no sooner than the gap after the last round", () => {
    const { node, rt } = setup(3);
    const eagerTimers = () => rt.timers.filter((t) => t.timer.kind === "gossip-eager");
    node.setLocalState(fakeState(42, 1), T0 + 1);
    expect(eagerTimers()).toEqual([{ afterMs: 5, timer: { kind: "gossip-eager" } }]);
    node.handleTimer({ kind: "gossip-eager" }, T0 + 6);
    const ours = rt.sent.filter((s) => s.messages.some((m) => m.t === T.alive && m.name === "me"));
    expect(ours.length).toBe(3); // gossipNodes
    // news relayed 14 ms after that round: the extra round waits until 50 ms after it
    rt.clear();
    node.handlePacket(addr(9), packet({ t: T.alive, name: "n9", addr: addr(9), inc: 1, boot: 1 }), T0 + 20);
    expect(eagerTimers().at(-1)?.afterMs).toBe(36);
    // more news before it runs is carried by the same round
    node.handlePacket(addr(8), packet({ t: T.alive, name: "n8", addr: addr(8), inc: 1, boot: 1 }), T0 + 30);
    expect(eagerTimers().length).toBe(2);
    node.handleTimer({ kind: "gossip-eager" }, T0 + 56);
    const relayed = new Set(rt.sent.flatMap((s) => s.messages).map((m) => (m.t === T.alive ? m.name : "")));
    expect(relayed.has("n8") && relayed.has("n9")).toBe(true);
    // with the extra round disabled, news waits for the regular round (memberlist's way)
    const off = setup(3, { eagerGossipMs: 0 });
    off.node.setLocalState(fakeState(42, 1), T0 + 1);
    expect(off.rt.timers.some((t) => t.timer.kind === "gossip-eager")).toBe(false);
    expect(off.rt.sent.length).toBe(0);
  });

  test("a version of its own state it never made (a previous process) moves its boot past it", () => {
    const { node } = setup(1);
    node.setLocalState(fakeState(42, 1), T0);
    node.handlePacket(addr(1), packet({ t: T.stateVer, name: "me", version: { boot: T0, seq: 50 } }), T0 + 1);
    const v = node.stateVersionOf("me");
    expect(v?.boot).toBe(T0 + 1);
    expect(node.stats().refutations).toBe(1);
  });

  test("announced versions are fetched from the announcer, then the owner", () => {
    const { node, rt } = setup(2);
    node.handlePacket(addr(2), packet({ t: T.stateVer, name: "n1", version: { boot: 10, seq: 3 } }), T0);
    expect(rt.streams.map((s) => s.to)).toEqual([addr(2)]);
    node.handleStreamFailure(rt.streams[0]?.token as number, T0 + 10);
    expect(rt.streams.map((s) => s.to)).toEqual([addr(2), addr(1)]);
    const reply = encodeMessage({
      t: T.states,
      states: [{ name: "n1", version: { boot: 10, seq: 3 }, state: fakeState(42, 1) }],
    });
    node.handleStreamResponse(rt.streams[1]?.token as number, reply, T0 + 20);
    expect(node.stateVersionOf("n1")).toEqual({ boot: 10, seq: 3 });
  });

  test("pings and acks carry the sender's own state version: a missed update is fetched from its owner", () => {
    const { node, rt } = setup(1);
    node.setLocalState(fakeState(42, 1), T0);
    node.handlePacket(addr(1), packet({ t: T.ping, seq: 5, to: "me" }), T0 + 1);
    expect(rt.sent[0]?.messages.slice(0, 2)).toEqual([
      { t: T.ack, seq: 5, from: "me", inc: T0, boot: T0 },
      { t: T.stateVer, name: "me", version: { boot: T0, seq: 1 } },
    ]);
    rt.clear();
    node.handleTimer(rt.lastTimer("probe"), T0 + 1000);
    const ping = rt.sent.find((s) => s.messages[0]?.t === T.ping);
    expect(ping?.messages[1]).toEqual({ t: T.stateVer, name: "me", version: { boot: T0, seq: 1 } });

    // we hold n1's report at seq 1; its ack says it is at seq 2 (the update never reached us)
    node.handlePacket(
      addr(1),
      packet({ t: T.state, name: "n1", version: { boot: 10, seq: 1 }, state: fakeState(7, 1) }),
      T0 + 1001,
    );
    const seq = (ping?.messages[0] as { seq: number } | undefined)?.seq ?? -1;
    node.handlePacket(
      addr(1),
      packet(
        { t: T.ack, seq, from: "n1", inc: 10, boot: 10 },
        { t: T.stateVer, name: "n1", version: { boot: 10, seq: 2 } },
      ),
      T0 + 1002,
    );
    expect(rt.streams.map((s) => s.to)).toEqual([addr(1)]);
  });
});

describe("GossipNode: aliases", () => {
  test("last writer by HLC wins whatever the arrival order; ties go to the greater origin", () => {
    const { node } = setup(2);
    const A = fakeHash(1);
    const B = fakeHash(2);
    const write = (origin: string, wall: number, logical: number, hash: string | null) =>
      packet({ t: T.alias, origin, hlc: { wall, logical }, entries: [{ name: "prod", hash, previous: [] }] });
    node.handlePacket(addr(1), write("n1", T0 + 5, 0, B), T0);
    node.handlePacket(addr(1), write("n1", T0 + 4, 9, A), T0);
    expect(node.aliases()[0]?.hash).toBe(B);
    node.handlePacket(addr(2), write("n2", T0 + 5, 0, A), T0); // same HLC, greater origin
    expect(node.aliases()[0]).toMatchObject({ hash: A, origin: "n2" });
    node.handlePacket(addr(2), write("n0", T0 + 5, 0, B), T0);
    expect(node.aliases()[0]?.origin).toBe("n2");
    // a local write after seeing a remote one orders after it, even with a clock behind
    const rec = node.setAlias("prod", null, T0 - 1000);
    expect(rec.hlc.wall).toBe(T0 + 5);
    expect(node.aliases()[0]).toMatchObject({ hash: null, origin: "me" });
  });

  test("refuses writes from a clock far ahead", () => {
    const { node } = setup(1);
    node.handlePacket(
      addr(1),
      packet({
        t: T.alias,
        origin: "n1",
        hlc: { wall: T0 + 3_600_000, logical: 0 },
        entries: [{ name: "x", hash: fakeHash(3), previous: [] }],
      }),
      T0,
    );
    expect(node.aliases()).toEqual([]);
    expect(node.stats().rejectedAliases).toBe(1);
  });

  test("a write carries the name's previous targets (newest first, no repeats); a gossiped one keeps them", () => {
    const { node } = setup(1);
    const [A, B, C] = [fakeHash(11), fakeHash(12), fakeHash(13)];
    node.setAlias("prod", A, T0);
    node.setAlias("prod", B, T0 + 1);
    node.setAlias("prod", null, T0 + 2);
    node.setAlias("prod", A, T0 + 3);
    expect(node.setAlias("prod", C, T0 + 4).previous).toEqual([A, B]);
    node.handlePacket(
      addr(1),
      packet({
        t: T.alias,
        origin: "n1",
        hlc: { wall: T0 + 9, logical: 0 },
        entries: [{ name: "prod", hash: B, previous: [C, A] }],
      }),
      T0 + 5,
    );
    expect(node.aliases()[0]).toMatchObject({ hash: B, previous: [C, A], origin: "n1" });
    expect(node.setAlias("prod", A, T0 + 6).previous).toEqual([B, C]);
  });

  test("a write too large for one packet goes in parts that each fit, and a member applies them all", () => {
    const { rt, node } = setup(1);
    const names = Array.from({ length: 12 }, (_, i) => `alias-${i}`);
    // give every alias a history as long as a record carries
    for (let v = 0; v < 10; v++)
      node.setAliases(
        names.map((name, i) => ({ name, hash: fakeHash(100 * i + v) })),
        T0 + v,
      );
    rt.clear();
    node.setAliases(
      names.map((name, i) => ({ name, hash: fakeHash(100 * i + 50) })),
      T0 + 20,
    );
    for (let i = 0; i < 20; i++) node.handleTimer(rt.lastTimer("gossip"), T0 + 200 * (i + 1));
    const parts = rt.sent
      .flatMap((s) => s.messages)
      .filter(
        (m): m is Extract<PacketMessage, { t: typeof T.alias }> => m.t === T.alias && m.hlc.wall === T0 + 20,
      );
    const sent = new Set(parts.flatMap((m) => m.entries.map((e) => e.name)));
    expect(sent).toEqual(new Set(names));
    // in several parts (each packet also stays within 1350 bytes: FakeRuntime checks)
    expect(parts.every((m) => m.entries.length < names.length)).toBe(true);
    for (const m of parts) for (const e of m.entries) expect(e.previous).toHaveLength(9);

    const other = setup(1).node;
    for (const m of parts) other.handlePacket(addr(1), packet(m), T0 + 21);
    expect(
      other
        .aliases()
        .map((r) => r.hash)
        .sort(),
    ).toEqual(names.map((_, i) => fakeHash(100 * i + 50)).sort());
  });
});
