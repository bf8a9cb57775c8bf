import { describe, expect, test } from "bun:test";
import { Encoder } from "@msgpack/msgpack";
import { fakeHash, fakeRollout, fakeState } from "../../../../test/support/gossip/fixtures.ts";
import { randomInt, Xoshiro128 } from "../../../lib/prng.ts";
import { assemblePacket, decodePacket, encodeMessage } from "./codec.ts";
import { appStateProblem } from "./codec-fields.ts";
import { decodeStream } from "./codec-stream.ts";
import type { PacketMessage, StreamMessage } from "./messages.ts";
import { T } from "./messages.ts";

const H1 = fakeHash(1);
const H2 = fakeHash(2);

const packetMessages: PacketMessage[] = [
  { t: T.ping, seq: 4_000_000_000, to: "node-1" },
  { t: T.ack, seq: 0, from: "node-2", inc: 10, boot: 10 },
  { t: T.nack, seq: 17 },
  { t: T.pingReq, seq: 5, target: "node-3", targetAddr: "10.0.0.3:7946", nack: true },
  { t: T.alive, name: "node-4", addr: "[::1]:7946", inc: 1_700_000_000_123, boot: 1_700_000_000_000 },
  { t: T.suspect, name: "node-5", inc: 3, from: "node-1" },
  { t: T.dead, name: "node-5", inc: 3, from: "node-5" },
  {
    t: T.state,
    name: "node-6",
    version: { boot: 9, seq: 2 },
    state: fakeState(0, 3, { refs: 2, ingress: "10.0.0.6:80" }),
  },
  { t: T.state, name: "node-6", version: { boot: 9, seq: 3 }, state: { hashes: [] } },
  // reports with a service name, a reason, request counts and sticky use
  { t: T.state, name: "node-6", version: { boot: 9, seq: 4 }, state: fakeState(20, 2, { extras: true }) },
  { t: T.stateVer, name: "node-7", version: { boot: 1, seq: 0 } },
  {
    t: T.alias,
    origin: "node-8",
    hlc: { wall: 1_700_000_000_000, logical: 3 },
    entries: [
      { name: "prod.example", hash: H1, previous: [H2] },
      { name: "old", hash: null, previous: [] },
    ],
  },
  {
    t: T.alias,
    origin: "node-8",
    hlc: { wall: 1_700_000_000_001, logical: 0 },
    entries: [
      {
        name: "prod",
        hash: H1,
        previous: [],
        split: [
          { hash: H1, weight: 75 },
          { hash: H2, weight: 25 },
        ],
        rollout: fakeRollout(H1, H2),
      },
      {
        name: "api",
        hash: H2,
        previous: [H1],
        split: [
          { hash: H2, weight: 60 },
          { hash: H1, weight: 40 },
        ],
      },
    ],
  },
];

const streamMessages: StreamMessage[] = [
  {
    t: T.pushPull,
    join: true,
    from: "node-1",
    fromAddr: "10.0.0.1:7946",
    members: [
      {
        name: "node-1",
        addr: "10.0.0.1:7946",
        inc: 5,
        status: "alive",
        boot: 5,
        version: { boot: 5, seq: 1 },
      },
      { name: "node-2", addr: "10.0.0.2:7946", inc: 7, status: "left", boot: 6, version: null },
    ],
    aliases: [
      { name: "prod", hash: H2, hlc: { wall: 10, logical: 0 }, origin: "node-1", previous: [H1] },
      { name: "api", hash: H1, hlc: { wall: 9, logical: 1 }, origin: "node-2", previous: [] },
      {
        name: "web",
        hash: H2,
        hlc: { wall: 11, logical: 0 },
        origin: "node-2",
        previous: [],
        split: [
          { hash: H1, weight: 25 },
          { hash: H2, weight: 75 },
        ],
        rollout: fakeRollout(H1, H2),
      },
    ],
    // reports with every optional field: the deepest nesting the protocol has (MAX_MESSAGE_DEPTH)
    states: [
      { name: "node-1", version: { boot: 5, seq: 1 }, state: fakeState(10, 2, { refs: 2, extras: true }) },
    ],
  },
  { t: T.fetch, names: ["node-1", "node-2"] },
  { t: T.states, states: [] },
  {
    t: T.states,
    states: [{ name: "node-2", version: { boot: 6, seq: 9 }, state: fakeState(30, 3, { extras: true }) }],
  },
];

const raw = new Encoder();

describe("round trips", () => {
  test("every packet message, alone and together", () => {
    for (const m of packetMessages) {
      const r = decodePacket(assemblePacket([encodeMessage(m)]), 1350);
      expect(r).toEqual({ ok: true, value: [m] });
    }
    const all = decodePacket(assemblePacket(packetMessages.map(encodeMessage)), 4096);
    expect(all).toEqual({ ok: true, value: packetMessages });
  });

  test("a packet of more than 15 messages uses the array16 header", () => {
    const many = Array.from({ length: 40 }, (_, i): PacketMessage => ({ t: T.nack, seq: i }));
    const r = decodePacket(assemblePacket(many.map(encodeMessage)), 1350);
    expect(r).toEqual({ ok: true, value: many });
  });

  test("every stream message", () => {
    for (const m of streamMessages)
      expect(decodeStream(encodeMessage(m), 1 << 20)).toEqual({ ok: true, value: m });
  });

  test("alias writes and records without previous targets (as agents before them send) decode with none", () => {
    const write = decodePacket(raw.encode([[T.alias, "n", 5, 0, [["prod", H1]]]]), 1350);
    expect(write).toEqual({
      ok: true,
      value: [
        {
          t: T.alias,
          origin: "n",
          hlc: { wall: 5, logical: 0 },
          entries: [{ name: "prod", hash: H1, previous: [] }],
        },
      ],
    });
    // and an empty list is left out when encoding, so those agents still read such writes
    const none = {
      t: T.alias,
      origin: "n",
      hlc: { wall: 5, logical: 0 },
      entries: [{ name: "a", hash: H1, previous: [] }],
    };
    expect(encodeMessage(none as PacketMessage)).toEqual(raw.encode([T.alias, "n", 5, 0, [["a", H1]]]));
  });
});

describe("refusals (never a throw)", () => {
  const bad: [string, unknown][] = [
    ["not an array", { t: 1 }],
    ["empty packet", []],
    ["unknown type", [[99, 1]]],
    ["wrong arity", [[T.ping, 1]]],
    ["negative seq", [[T.ping, -1, "a"]]],
    ["float seq", [[T.ping, 1.5, "a"]]],
    ["empty name", [[T.ping, 1, ""]]],
    ["overlong name", [[T.ping, 1, "x".repeat(129)]]],
    ["bad address", [[T.alive, "n", "no-port", 1, 1]]],
    ["bad hash", [[T.state, "n", 1, 1, [[["E".repeat(32), 2, 0, 0, []]], null]]]],
    ["bad deployment state", [[T.state, "n", 1, 1, [[[H1, 9, 0, 0, []]], null]]]],
    ["counter above uint32", [[T.state, "n", 1, 1, [[[H1, 2, 2 ** 32, 0, []]], null]]]],
    ["bad ref", [[T.state, "n", 1, 1, [[[H1, 2, 0, 0, ["nope"]]], null]]]],
    ["version (0, 0)", [[T.stateVer, "n", 0, 0]]],
    ["alias with no entries", [[T.alias, "n", 1, 0, []]]],
    ["alias to a non-hash", [[T.alias, "n", 1, 0, [["prod", "x"]]]]],
    ["alias with a non-hash previous target", [[T.alias, "n", 1, 0, [["prod", H1, ["x"]]]]]],
    ["alias with too many previous targets", [[T.alias, "n", 1, 0, [["prod", H1, Array(10).fill(H2)]]]]],
    [
      "split weights that do not sum to 100",
      [
        [
          T.alias,
          "n",
          1,
          0,
          [
            [
              "p",
              H1,
              [],
              [
                [H1, 60],
                [H2, 60],
              ],
              null,
            ],
          ],
        ],
      ],
    ],
    ["split with one hash", [[T.alias, "n", 1, 0, [["p", H1, [], [[H1, 100]], null]]]]],
    [
      "split with a repeated hash",
      [
        [
          T.alias,
          "n",
          1,
          0,
          [
            [
              "p",
              H1,
              [],
              [
                [H1, 50],
                [H1, 50],
              ],
              null,
            ],
          ],
        ],
      ],
    ],
    ["split of five", [[T.alias, "n", 1, 0, [["p", H1, [], Array(5).fill([H1, 20]), null]]]]],
    [
      "split whose hash is not a target",
      [
        [
          T.alias,
          "n",
          1,
          0,
          [
            [
              "p",
              fakeHash(9),
              [],
              [
                [H1, 50],
                [H2, 50],
              ],
              null,
            ],
          ],
        ],
      ],
    ],
    [
      "split with a float weight",
      [
        [
          T.alias,
          "n",
          1,
          0,
          [
            [
              "p",
              H1,
              [],
              [
                [H1, 50.5],
                [H2, 49.5],
              ],
              null,
            ],
          ],
        ],
      ],
    ],
    ["rollout of the wrong arity", [[T.alias, "n", 1, 0, [["p", H1, [], null, [0, H1, H2]]]]]],
    ["rollout with a 4-entry entry (no such form)", [[T.alias, "n", 1, 0, [["p", H1, [], null]]]]],
    ["report with a 6-field tail", [[T.state, "n", 1, 1, [[[H1, 2, 0, 0, [], "svc"]], null]]]],
    [
      "report with an overlong service name",
      [[T.state, "n", 1, 1, [[[H1, 2, 0, 0, [], "x".repeat(129), null, null, null]], null]]],
    ],
    [
      "report with a reason that is not text",
      [[T.state, "n", 1, 1, [[[H1, 2, 0, 0, [], null, 5, null, null]], null]]],
    ],
    [
      "report with negative sticky time",
      [[T.state, "n", 1, 1, [[[H1, 2, 0, 0, [], null, null, null, -1]], null]]],
    ],
    [
      "report with counts that are not counts",
      [[T.state, "n", 1, 1, [[[H1, 2, 0, 0, [], null, null, [1, 2], null]], null]]],
    ],
    [
      "one bad message spoils the packet",
      [
        [T.nack, 1],
        [T.nack, "x"],
      ],
    ],
    ["a map", [new Map([["t", 1]])]],
  ];
  test.each(bad)("%s", (_name, value) => {
    const bytes = raw.encode(value);
    const r = decodePacket(bytes, 1350);
    expect(r.ok).toBe(false);
  });

  test("binary and extension types are refused by the decoder", () => {
    expect(decodePacket(raw.encode([[T.ping, 1, new Date(0)]]), 1350).ok).toBe(false);
    expect(decodePacket(new Uint8Array([0x91, 0xc4, 0xff, 0x00]), 1350).ok).toBe(false);
  });

  test("invalid UTF-8 in a string is refused", () => {
    // [[1, 1, <str8 of 2 bytes: 0xc3 0x28>]]
    expect(decodePacket(new Uint8Array([0x91, 0x93, 0x01, 0x01, 0xa2, 0xc3, 0x28]), 1350).ok).toBe(false);
  });

  test("size bounds", () => {
    const big = assemblePacket(
      Array.from({ length: 200 }, (_, i) =>
        encodeMessage({ t: T.ack, seq: i, from: "node-x", inc: 10, boot: 10 }),
      ),
    );
    expect(big.length).toBeGreaterThan(1350);
    expect(decodePacket(big, 1350)).toEqual({ ok: false, error: expect.stringContaining("exceeds") });
    expect(decodeStream(new Uint8Array(2000), 1000).ok).toBe(false);
    expect(decodePacket(new Uint8Array(0), 1350).ok).toBe(false);
  });

  test("every truncation of a valid packet and stream message is an error, not a crash", () => {
    const packet = assemblePacket(packetMessages.map(encodeMessage));
    for (let n = 0; n < packet.length; n++) expect(decodePacket(packet.subarray(0, n), 4096).ok).toBe(false);
    const stream = encodeMessage(streamMessages[0] as StreamMessage);
    for (let n = 0; n < stream.length; n++)
      expect(decodeStream(stream.subarray(0, n), 1 << 20).ok).toBe(false);
  });

  test("random garbage and bit flips never throw", () => {
    const rng = new Xoshiro128(1234);
    const packet = assemblePacket(packetMessages.map(encodeMessage));
    for (let i = 0; i < 3000; i++) {
      const garbage = Uint8Array.from({ length: randomInt(rng, 64) }, () => randomInt(rng, 256));
      expect(() => decodePacket(garbage, 1350)).not.toThrow();
      expect(() => decodeStream(garbage, 1350)).not.toThrow();
      const flipped = packet.slice();
      const at = randomInt(rng, flipped.length);
      flipped[at] = (flipped[at] as number) ^ (1 << randomInt(rng, 8));
      const r = decodePacket(flipped, 4096);
      if (r.ok) expect(Array.isArray(r.value)).toBe(true);
    }
  });
});

describe("rollouts in alias writes: every field checked", () => {
  const valid = encodeMessage({
    t: T.alias,
    origin: "n",
    hlc: { wall: 5, logical: 0 },
    entries: [{ name: "p", hash: H1, previous: [], rollout: fakeRollout(H1, H2) }],
  } as PacketMessage);
  const base = decodePacket(assemblePacket([valid]), 1350);

  test("the valid one decodes", () => expect(base.ok).toBe(true));

  // index in the encoded rollout array -> a hostile value
  const hostile: [string, number, unknown][] = [
    ["unknown kind", 0, 7],
    ["from not a hash", 1, "nope"],
    ["canary equal to baseline", 2, H1],
    ["steps not ascending", 3, [50, 25, 100]],
    ["steps not ending at 100", 3, [5, 25]],
    ["eleven steps", 3, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100]],
    ["step out of range", 4, 4],
    ["negative step time", 6, -1],
    ["analysis window of 0", 7, 0],
    ["error rate above 1", 8, 2],
    ["p99 ratio below 1", 9, 0.5],
    ["min requests 0", 10, 0],
    ["unknown status", 11, 9],
    ["note longer than 400", 12, "x".repeat(401)],
    ["start time NaN", 13, Number.NaN],
  ];
  test.each(hostile)("%s is refused", (_name, at, value) => {
    const r = fakeRollout(H1, H2);
    const valid = (): unknown[] => [
      0,
      r.from,
      r.to,
      r.steps,
      r.step,
      r.stepSince,
      r.stepTimeMs,
      r.intervalMs,
      0.01,
      1.5,
      200,
      0,
      r.note,
      r.startedAt,
    ];
    const entry = (fields: unknown[]) => raw.encode([[T.alias, "n", 5, 0, [["p", H1, [], null, fields]]]]);
    const fields = valid();
    fields[at] = value;
    expect(decodePacket(entry(fields), 4096).ok).toBe(false);
    // the same write with that field valid decodes: the field alone was refused
    expect(decodePacket(entry(valid()), 4096).ok).toBe(true);
  });
});

describe("appStateProblem (local input)", () => {
  test("accepts a valid state and names what is wrong with an invalid one", () => {
    expect(appStateProblem(fakeState(0, 5, { refs: 3, ingress: "10.1.2.3:8080" }))).toBeNull();
    expect(
      appStateProblem({ hashes: [{ hash: "abc", state: "ready", inFlight: 0, holds: 0, refs: [] }] }),
    ).toContain("not a store hash");
    const dup = fakeState(0, 1);
    dup.hashes.push({ ...(dup.hashes[0] as (typeof dup.hashes)[0]) });
    expect(appStateProblem(dup)).toContain("twice");
    expect(appStateProblem({ hashes: [], ingress: "nowhere" })).toContain("ingress");
    expect(
      appStateProblem({ hashes: [{ hash: H1, state: "ready", inFlight: -1, holds: 0, refs: [] }] }),
    ).toContain("uint32");
  });
});
