/**
 * How large the largest real stream message is: a push-pull reply carrying the full state of
 * 1,000 members with 1,000 hashes each (a joiner's first exchange: it lacks every state), built
 * with the real encoder (codec.ts encodeMessage). The stream bound (config.ts maxStreamBytes)
 * is set from it with a margin. Also decodes it through the real path (decodeStream: scan, then
 * decode) to show it passes the decode limits, and what decoding it costs.
 *
 *   bun bench/gossip/push-pull-size.ts [--members 1000] [--hashes 1000] [--refs 0,1,2] [--aliases 1000]
 *
 * Every field is as large as real traffic makes it: 25-character member names, boot ids and
 * incarnations that are millisecond clocks (9 bytes each), in-flight counts above 65,535, an
 * ingress on every state, and 1,000 aliases each with the full history (9 previous targets).
 */

import { parseArgs } from "node:util";
import { DEFAULT_CONFIG } from "../../src/agent/gossip/config.ts";
import { encodeMessage } from "../../src/agent/gossip/wire/codec.ts";
import { decodeStream } from "../../src/agent/gossip/wire/codec-stream.ts";
import {
  type FullState,
  type PushPull,
  type PushPullMember,
  T,
} from "../../src/agent/gossip/wire/messages.ts";
import type { AliasRecord } from "../../src/model/alias-record.ts";
import type { HashReport } from "../../src/model/reports.ts";
import { fakeHash } from "../../test/support/gossip/fixtures.ts";

const { values } = parseArgs({
  options: {
    members: { type: "string", default: "1000" },
    hashes: { type: "string", default: "1000" },
    refs: { type: "string", default: "0,1,2" },
    aliases: { type: "string", default: "1000" },
  },
});
const MEMBERS = Number(values.members);
const HASHES = Number(values.hashes);
const ALIASES = Number(values.aliases);
const BOOT = 1_760_000_000_000;

const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const name = (i: number): string => `host-${String(i).padStart(4, "0")}.dc1.example.net`;

const build = (refs: number): PushPull => {
  const members: PushPullMember[] = [];
  const states: FullState[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    const version = { boot: BOOT + i, seq: 123_456 };
    members.push({
      name: name(i),
      addr: `${ip(i)}:7946`,
      inc: BOOT + i + 3,
      status: "alive",
      boot: BOOT + i,
      version,
    });
    const hashes: HashReport[] = [];
    for (let h = 0; h < HASHES; h++) {
      const n = i * HASHES + h;
      hashes.push({
        hash: fakeHash(n),
        state: "ready",
        inFlight: 100_000 + h,
        holds: h % 4,
        refs: Array.from({ length: refs }, (_, r) => fakeHash(50_000_000 + n * 8 + r)),
      });
    }
    states.push({ name: name(i), version, state: { hashes, ingress: `${ip(i)}:8480` } });
  }
  const aliases: AliasRecord[] = [];
  for (let a = 0; a < ALIASES; a++) {
    aliases.push({
      name: `service-${a}.prod.example.net`,
      hash: fakeHash(90_000_000 + a),
      hlc: { wall: BOOT + a, logical: a % 7 },
      origin: name(a % Math.max(1, MEMBERS)),
      previous: Array.from({ length: 9 }, (_, k) => fakeHash(91_000_000 + a * 10 + k)),
    });
  }
  return { t: T.pushPull, join: false, from: name(0), fromAddr: `${ip(0)}:7946`, members, aliases, states };
};

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

console.log(
  `push-pull reply: ${MEMBERS} members x ${HASHES} hashes, ${ALIASES} aliases (9 previous targets each)`,
);
console.log(
  `stream bound now: maxStreamBytes = ${DEFAULT_CONFIG.maxStreamBytes} (${mib(DEFAULT_CONFIG.maxStreamBytes)})`,
);
for (const refs of values.refs.split(",").map(Number)) {
  const msg = build(refs);
  let t = performance.now();
  const bytes = encodeMessage(msg);
  const encodeMs = performance.now() - t;
  const withoutStates = encodeMessage({ ...msg, states: [] }).length;
  Bun.gc(true);
  const rss0 = process.memoryUsage().rss;
  t = performance.now();
  const decoded = decodeStream(bytes, bytes.length);
  const decodeMs = performance.now() - t;
  const rss = process.memoryUsage().rss - rss0;
  console.log(
    `refs/hash ${refs}: ${bytes.length} bytes (${mib(bytes.length)}); without states ${withoutStates} bytes; ` +
      `encode ${encodeMs.toFixed(0)} ms, decode ${decodeMs.toFixed(0)} ms (${decoded.ok ? "ok" : decoded.error}), ` +
      `RSS +${mib(rss)}; fits the bound: ${bytes.length <= DEFAULT_CONFIG.maxStreamBytes}`,
  );
}
