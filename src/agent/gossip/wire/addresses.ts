/**
 * Which advertised ingress addresses a member could serve from, so that gossip cannot point the
 * ingress's routes at arbitrary ports (this host's loopback services, a cloud metadata endpoint,
 * another host that is no member). A member's report names the `ip:port` its HTTP ingress listens
 * on; a route to a remote member is made only to an address that
 *
 * - is an IP literal, v4 (`10.0.0.5:80`) or v6 in brackets (`[fd00::5]:80`), no host names (a name
 *   resolves to whatever DNS says, not to the member), port 1-65535;
 * - is not loopback, unspecified, multicast, broadcast/reserved (240/4) or link-local: loopback
 *   and unspecified are this host itself, never a remote member; link-local v4 is where cloud
 *   metadata services answer (169.254.169.254) and link-local v6 is unusable without a zone;
 * - is the same IP as the member's gossip address (the one it is probed at): a member serves its
 *   ingress from its own host. So an ingress can only point at a host that answers as a member.
 *
 * Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) are fine: clusters live on them.
 */
import { BlockList, isIP } from "node:net";

type Family = "ipv4" | "ipv6";

/** An IP literal and its family (node:net's isIP: no leading zeros, no zones), or null. */
export const parseIp = (s: string): { ip: string; family: Family } | null => {
  if (s.includes("%")) return null; // zones are link-local only: refused anyway
  const version = isIP(s);
  return version === 0 ? null : { ip: s, family: version === 4 ? "ipv4" : "ipv6" };
};

/** Host and port of `ip:port` or `[ipv6]:port`; null unless the port is 1-65535 in plain digits. */
export const splitHostPort = (a: string): { host: string; port: number } | null => {
  const i = a.lastIndexOf(":");
  if (i <= 0) return null;
  const portText = a.slice(i + 1);
  if (!/^[1-9][0-9]{0,4}$/.test(portText)) return null;
  const port = Number(portText);
  if (port > 65535) return null;
  let host = a.slice(0, i);
  if (host.startsWith("[")) {
    if (!host.endsWith("]")) return null;
    host = host.slice(1, -1);
  } else if (host.includes(":")) {
    return null; // an IPv6 literal must be bracketed
  }
  return { host, port };
};

/** A BlockList of the given v4 and v6 subnets; its IPv4 rules also match IPv4-mapped IPv6. */
const ranges = (v4: [string, number][], v6: [string, number][]): BlockList => {
  const list = new BlockList();
  for (const [net, bits] of v4) list.addSubnet(net, bits, "ipv4");
  for (const [net, bits] of v6) list.addSubnet(net, bits, "ipv6");
  return list;
};

/** Where no remote member could serve from, by why. */
const REFUSED: [string, BlockList][] = [
  ["unspecified", ranges([["0.0.0.0", 8]], [["::", 128]])],
  ["loopback", ranges([["127.0.0.0", 8]], [["::1", 128]])],
  ["link-local", ranges([["169.254.0.0", 16]], [["fe80::", 10]])],
  ["multicast", ranges([["224.0.0.0", 4]], [["ff00::", 8]])],
  ["reserved or broadcast", ranges([["240.0.0.0", 4]], [])],
];

const sameIp = (a: { ip: string; family: Family }, b: { ip: string; family: Family }): boolean => {
  const one = new BlockList();
  one.addAddress(a.ip, a.family);
  return one.check(b.ip, b.family);
};

/**
 * Why a member at gossip address `memberAddr` could not serve an ingress at `ingress`, or null if
 * a route to it may be made.
 */
export const ingressProblem = (ingress: string, memberAddr: string): string | null => {
  // asked on every request routed to a member; the pairs change only when members do
  const key = `${ingress} ${memberAddr}`;
  const known = verdicts.get(key);
  if (known !== undefined) return known;
  if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
  const problem = findIngressProblem(ingress, memberAddr);
  verdicts.set(key, problem);
  return problem;
};

const MAX_VERDICTS = 1024;
const verdicts = new Map<string, string | null>();

const findIngressProblem = (ingress: string, memberAddr: string): string | null => {
  const hp = splitHostPort(ingress);
  if (hp === null) return "not ip:port with a port 1-65535";
  const ip = parseIp(hp.host);
  if (ip === null) return "not an IP literal";
  const bad = REFUSED.find(([, list]) => list.check(ip.ip, ip.family));
  if (bad !== undefined) return `a ${bad[0]} address`;
  const member = splitHostPort(memberAddr);
  const memberIp = member === null ? null : parseIp(member.host);
  if (memberIp === null || !sameIp(ip, memberIp)) return "not the IP of the member's gossip address";
  return null;
};
