import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeHash, fakeMemberInfo } from "../../../test/support/gossip/fixtures.ts";
import { configSchema } from "../../model/config.ts";
import type { MemberInfo } from "../gossip/types.ts";
import { Keyring } from "../gossip/wire/crypto.ts";
import { GossipCluster, membershipLogLine } from "./cluster.ts";

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

  test("a claim this member cannot outrank is said", () => {
    expect(
      membershipLogLine({
        type: "incarnation-exhausted",
        field: "incarnation",
        claimed: 2 ** 52,
        bound: 2 ** 52,
      }),
    ).toContain("not refuted");
  });

  test("state and alias changes are not membership: no line", () => {
    expect(membershipLogLine({ type: "state-changed", name: "b", version: null })).toBeNull();
    expect(membershipLogLine({ type: "member-reaped", member: member("dead") })).toBeNull();
  });
});

describe("GossipCluster.whoRuns: routes only to an ingress the member could serve from", () => {
  test("a peer advertising an ingress on a loopback port gets no route", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hashd-cluster-"));
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, `${Keyring.generateKey()}\n`);
    const config = (name: string) =>
      configSchema.parse({ gossip: { address: "127.0.0.1", port: 0, keyFile, name } });
    const [a, b] = await Promise.all(
      ["a", "b"].map((n) =>
        GossipCluster.start(
          config(n),
          [],
          () => {},
          () => {},
        ),
      ),
    );
    try {
      const h = fakeHash(7);
      // b says its ingress is 127.0.0.1:22: at a, that would be a's own port 22
      b?.publish({
        hashes: [{ hash: h, state: "ready", inFlight: 0, holds: 0, refs: [] }],
        ingress: "127.0.0.1:22",
      });
      b?.join([a?.memberInfos().find((m) => m.name === "a")?.address as string]);
      const deadline = Date.now() + 15_000;
      while (a?.memberState("b")?.ingress !== "127.0.0.1:22" && Date.now() < deadline) await Bun.sleep(20);
      expect(a?.memberState("b")?.ingress).toBe("127.0.0.1:22"); // the report arrived
      expect(a?.whoRuns(h)).toEqual([]); // before: a route to http://127.0.0.1:22
    } finally {
      await Promise.all([a?.stop(), b?.stop()]);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
