/**
 * Advertised ingress addresses (addresses.ts): a report used to need only `something:port` for
 * the ingress to route to it, so gossip could point routes at any port of any host, this one's
 * loopback included. Now only an IP literal a member could serve from, on its own gossip IP.
 */
import { describe, expect, test } from "bun:test";
import { addr, packet, fakeRuntimeNode as setup, T0 } from "../../../../test/support/gossip/fake-runtime.ts";
import { fakeHash, fakeState } from "../../../../test/support/gossip/fixtures.ts";
import { ingressProblem, parseIp } from "./addresses.ts";
import { decodePacket, encodeMessage } from "./codec.ts";
import { T } from "./messages.ts";

const MEMBER = "10.0.0.5:7946";

describe("ingressProblem", () => {
  test.each(["10.0.0.5:8480", "10.0.0.5:1", "10.0.0.5:65535", "[::ffff:10.0.0.5]:80"])(
    "a member at 10.0.0.5 may serve from %s",
    (ingress) => expect(ingressProblem(ingress, MEMBER)).toBeNull(),
  );

  test.each([
    ["127.0.0.1:8480", "loopback"],
    ["127.1.2.3:22", "loopback"],
    ["0.0.0.0:80", "unspecified"],
    ["169.254.169.254:80", "link-local"],
    ["224.0.0.1:80", "multicast"],
    ["255.255.255.255:80", "reserved or broadcast"],
    ["[::1]:80", "loopback"],
    ["[::]:80", "unspecified"],
    ["[::ffff:127.0.0.1]:80", "loopback"],
    ["[fe80::1]:80", "link-local"],
    ["[ff02::1]:80", "multicast"],
    ["10.0.0.6:8480", "not the IP of the member's gossip address"],
    ["localhost:8480", "not an IP literal"],
    ["example.com:80", "not an IP literal"],
    ["10.0.0.05:80", "not an IP literal"],
    ["1.2.3.256:80", "not an IP literal"],
    ["[fe80::1%eth0]:80", "not an IP literal"],
    ["[1::2::3]:80", "not an IP literal"],
    ["10.0.0.5:0", "port"],
    ["10.0.0.5:65536", "port"],
    ["10.0.0.5:08480", "port"],
    ["10.0.0.5", "port"],
    ["::1:80", "port"],
    ["[10.0.0.5]:80x", "port"],
  ])("%s is refused (%s)", (ingress, why) => {
    expect(ingressProblem(ingress, MEMBER)).toContain(why);
  });

  test("IPv6: the same address however it is written; a member known by a host name is never routed to", () => {
    expect(ingressProblem("[fd00:0:0:0:0:0:0:5]:80", "[fd00::5]:7946")).toBeNull();
    expect(ingressProblem("[FD00::5]:80", "[fd00::5]:7946")).toBeNull();
    expect(ingressProblem("[fd00::6]:80", "[fd00::5]:7946")).toContain("gossip address");
    expect(ingressProblem("10.0.0.5:80", "node-5:7946")).toContain("gossip address");
    expect(parseIp("1:2:3:4:5:6:7:8")).not.toBeNull();
    expect(parseIp("1:2:3:4:5:6:7")).toBeNull();
    expect(parseIp("1.2.3.4::")).toBeNull();
  });
});

describe("the node hands out an ingress only if a route may be made to it", () => {
  const report = (ingress: string, seq: number) =>
    packet({
      t: T.state,
      name: "n1",
      version: { boot: 10, seq },
      state: { ...fakeState(1, 1), ingress },
    });

  test("a loopback or foreign ingress is kept in the report but not routable", () => {
    const s = setup(1); // n1 at 10.0.0.1:7946
    s.node.handlePacket(addr(1), report("127.0.0.1:22", 1), T0 + 1);
    expect(s.node.memberState("n1")?.ingress).toBe("127.0.0.1:22"); // what it said, for the status page
    expect(s.node.whoRuns(fakeHash(1)).length).toBe(1); // its hashes still count (retirement reads them)
    expect(s.node.routableIngress("n1")).toBeNull();
    s.node.handlePacket(addr(1), report("10.9.9.9:8480", 2), T0 + 2);
    expect(s.node.routableIngress("n1")).toBeNull();
    s.node.handlePacket(addr(1), report("10.0.0.1:8480", 3), T0 + 3);
    expect(s.node.routableIngress("n1")).toBe("10.0.0.1:8480");
    expect(s.node.routableIngress("nobody")).toBeNull();
  });

  test("ports outside 1-65535 are refused by the decoder, in ingresses and gossip addresses", () => {
    for (const a of ["10.0.0.1:0", "10.0.0.1:99999"]) {
      const state = encodeMessage({
        t: T.state,
        name: "n1",
        version: { boot: 1, seq: 1 },
        state: { hashes: [], ingress: a },
      });
      expect(decodePacket(new Uint8Array([0x91, ...state]), 1350).ok).toBe(false);
      const alive = encodeMessage({ t: T.alive, name: "n1", addr: a, inc: 1, boot: 1 });
      expect(decodePacket(new Uint8Array([0x91, ...alive]), 1350).ok).toBe(false);
    }
  });
});
