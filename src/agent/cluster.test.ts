import { describe, expect, test } from "bun:test";
import { membershipLogLine } from "./cluster.ts";
import { fakeMemberInfo } from "./gossip/fixtures.ts";
import type { MemberInfo } from "./gossip/types.ts";

const member = (state: MemberInfo["state"]): MemberInfo =>
  fakeMemberInfo("b", state, "10.0.0.2:7946", 1700000000123);

describe("membershipLogLine", () => {
  test("one line per status change, naming the member, its address and incarnation", () => {
    expect(membershipLogLine({ type: "member-dead", member: member("dead") })).toBe(
      "gossip: b (10.0.0.2:7946) dead, incarnation 1700000000123",
    );
    expect(membershipLogLine({ type: "member-suspect", member: member("suspect") })).toBe(
      "gossip: b (10.0.0.2:7946) suspect, incarnation 1700000000123",
    );
    expect(membershipLogLine({ type: "joined", seed: "10.0.0.1:7946", members: 3 })).toBe(
      "gossip: joined through 10.0.0.1:7946 (3 members)",
    );
  });

  test("state and alias changes are not membership: no line", () => {
    expect(membershipLogLine({ type: "state-changed", name: "b", version: null })).toBeNull();
    expect(membershipLogLine({ type: "member-reaped", member: member("dead") })).toBeNull();
  });
});
