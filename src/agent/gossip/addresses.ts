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

/** The 16 bytes of an IPv6 address (IPv4 as ::ffff:a.b.c.d), or null if `s` is no IP literal. */
export const parseIp = (s: string): Uint8Array | null => {
  const v4 = parseIpv4(s);
  if (v4 !== null) return mapped(v4);
  return parseIpv6(s);
};

const DEC_OCTET = /^(0|[1-9][0-9]{0,2})$/;

const parseIpv4 = (s: string): number[] | null => {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!DEC_OCTET.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
};

const mapped = (v4: readonly number[]): Uint8Array => {
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(v4, 12);
  return b;
};

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

const parseIpv6 = (s: string): Uint8Array | null => {
  if (s.length > 45 || s.includes("%")) return null; // zones are link-local only: refused anyway
  const halves = s.split("::");
  if (halves.length > 2) return null;
  // an embedded IPv4 (::ffff:10.0.0.1) may only end the address
  const groups = (part: string, last: boolean): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string;
      if (last && i === items.length - 1 && item.includes(".")) {
        const v4 = parseIpv4(item);
        if (v4 === null) return null;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else {
        if (!HEXTET.test(item)) return null;
        out.push(Number.parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0] as string, halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1] as string, true) : [];
  if (head === null || tail === null) return null;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const b = new Uint8Array(16);
  all.forEach((g, i) => {
    b[2 * i] = g >> 8;
    b[2 * i + 1] = g & 0xff;
  });
  return b;
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

const isV4 = (b: Uint8Array): boolean =>
  b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/** Why no remote member could serve from this IP (loopback, ...), or null if one could. */
const ipProblem = (b: Uint8Array): string | null => {
  if (isV4(b)) {
    const a = b[12] as number;
    if (a === 0) return "unspecified";
    if (a === 127) return "loopback";
    if (a === 169 && b[13] === 254) return "link-local";
    if (a >= 224 && a <= 239) return "multicast";
    if (a >= 240) return "reserved or broadcast";
    return null;
  }
  if (b.every((x) => x === 0)) return "unspecified";
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return "loopback";
  if (b[0] === 0xff) return "multicast";
  if (b[0] === 0xfe && ((b[1] as number) & 0xc0) === 0x80) return "link-local";
  return null;
};

const sameIp = (a: Uint8Array, b: Uint8Array): boolean => a.every((x, i) => x === b[i]);

/**
 * Why a member at gossip address `memberAddr` could not serve an ingress at `ingress`, or null if
 * a route to it may be made.
 */
export const ingressProblem = (ingress: string, memberAddr: string): string | null => {
  const hp = splitHostPort(ingress);
  if (hp === null) return "not ip:port with a port 1-65535";
  const ip = parseIp(hp.host);
  if (ip === null) return "not an IP literal";
  const bad = ipProblem(ip);
  if (bad !== null) return `a ${bad} address`;
  const member = splitHostPort(memberAddr);
  const memberIp = member === null ? null : parseIp(member.host);
  if (memberIp === null || !sameIp(ip, memberIp)) return "not the IP of the member's gossip address";
  return null;
};
