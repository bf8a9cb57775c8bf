/**
 * Runs inside a sandbox host (bundled by bundleGossipTool() and written into the host), to attack a
 * hashd cluster the way a host on its network could:
 *
 *   bun gossip-tool.js member '<json>'   a gossip member with the cluster key (the real
 *       UdpGossipAdapter) that records every sealed datagram it sends and receives (the adapter's
 *       tap). Prints one JSON line per event; reads commands on stdin: "leave" leaves, writes the
 *       capture file and exits. Each captured datagram is annotated with the app-state versions it
 *       carries (it can open them: it holds the key).
 *   bun gossip-tool.js blast '<json>'    no member: a raw UDP socket that sends each target the
 *       captured datagrams again (replays), random bytes (forged), captured datagrams cut short
 *       (truncated) and datagrams above 1400 bytes (oversized). Prints what it sent as JSON.
 */
import { randomBytes } from "node:crypto";
import { MAX_DATAGRAM_BYTES, UdpGossipAdapter } from "../../src/agent/gossip/net/udp-adapter.ts";
import { decodePacket } from "../../src/agent/gossip/wire/codec.ts";
import { Keyring } from "../../src/agent/gossip/wire/crypto.ts";
import { T } from "../../src/agent/gossip/wire/messages.ts";

export interface Captured {
  dir: "in" | "out";
  peer: string;
  at: number;
  b64: string;
  /** app-state versions carried inside (alive with state, or state messages) */
  states: { name: string; boot: number; seq: number; holds: number }[];
}

export interface MemberArgs {
  name: string;
  bind: string;
  port: number;
  keyFile: string;
  seeds: string[];
  capture: string;
}

export interface BlastArgs {
  capture: string;
  targets: string[];
  forged: number;
  truncated: number;
  oversized: number;
  /** send every replay this many times */
  rounds: number;
}

export interface BlastReport {
  replayed: number;
  replayedStates: number;
  forged: number;
  truncated: number;
  oversized: number;
}

const print = (v: unknown) => console.log(JSON.stringify(v));

function statesIn(keyring: Keyring, sealed: Uint8Array): Captured["states"] {
  const plain = keyring.open(sealed, "hashd-gossip/udp");
  if (plain === null) return [];
  const d = decodePacket(plain, 1400);
  if (!d.ok) return [];
  const out: Captured["states"] = [];
  for (const m of d.value) {
    const holds = (hashes: { holds: number }[]) => hashes.reduce((n, h) => n + h.holds, 0);
    if (m.t === T.alive && m.state)
      out.push({ name: m.name, ...m.state.version, holds: holds(m.state.state.hashes) });
    if (m.t === T.state) out.push({ name: m.name, ...m.version, holds: holds(m.state.hashes) });
  }
  return out;
}

async function member(args: MemberArgs): Promise<void> {
  const keyring = await Keyring.load(args.keyFile);
  const opener = await Keyring.load(args.keyFile); // a second ring, so annotating counts nothing
  const captured: Captured[] = [];
  const adapter = await UdpGossipAdapter.start({
    name: args.name,
    keyring,
    bindHost: args.bind,
    port: args.port,
    tap: (dir, peer, sealed) => {
      if (captured.length >= 5000) return;
      const states = statesIn(opener, sealed);
      captured.push({ dir, peer, at: Date.now(), b64: Buffer.from(sealed).toString("base64"), states });
      for (const s of states) if (dir === "in") print({ event: "state-in", ...s });
    },
    onEvent: (e) => {
      if (e.type === "joined") print({ event: "joined", members: e.members });
      if (e.type === "join-failed") print({ event: "join-failed", seed: e.seed });
      if (e.type === "state-changed") print({ event: "state-changed", name: e.name, version: e.version });
    },
  });
  adapter.setLocalState({ hashes: [] });
  adapter.join(args.seeds);
  print({ event: "started", address: adapter.address });
  for await (const line of console) {
    if (line.trim() !== "leave") continue;
    await adapter.leave(1500);
    await Bun.write(args.capture, JSON.stringify(captured));
    print({ event: "left", captured: captured.length });
    process.exit(0);
  }
}

async function blast(args: BlastArgs): Promise<void> {
  const captured = JSON.parse(await Bun.file(args.capture).text()) as Captured[];
  const packets = captured.map((c) => new Uint8Array(Buffer.from(c.b64, "base64")));
  const withStates = captured.filter((c) => c.states.length > 0).length;
  const sock = await Bun.udpSocket({ binaryType: "uint8array" });
  const report: BlastReport = { replayed: 0, replayedStates: 0, forged: 0, truncated: 0, oversized: 0 };
  const pace = async (i: number) => {
    if (i % 20 === 19) await Bun.sleep(2); // stay under the receivers' socket buffers
  };
  for (const target of args.targets) {
    const i = target.lastIndexOf(":");
    const host = target.slice(0, i);
    const port = Number(target.slice(i + 1));
    let n = 0;
    const send = async (p: Uint8Array) => {
      sock.send(p, port, host);
      await pace(n++);
    };
    for (let r = 0; r < args.rounds; r++) {
      for (const p of packets) {
        await send(p);
        report.replayed++;
      }
      report.replayedStates += withStates;
    }
    for (let k = 0; k < args.forged; k++) {
      // random bytes of random length, half of them starting with the seal version byte
      const p = new Uint8Array(randomBytes(1 + Math.floor(Math.random() * MAX_DATAGRAM_BYTES)));
      if (k % 2 === 0) p[0] = 1;
      await send(p);
      report.forged++;
    }
    for (let k = 0; k < args.truncated && packets.length > 0; k++) {
      const p = packets[k % packets.length] as Uint8Array;
      await send(p.subarray(0, Math.max(1, Math.floor(p.length * Math.random()))));
      report.truncated++;
    }
    for (let k = 0; k < args.oversized; k++) {
      // a real sealed datagram padded past the bound, or random bytes up to 8 KB
      const base = packets[k % Math.max(1, packets.length)] ?? new Uint8Array(0);
      const size = MAX_DATAGRAM_BYTES + 1 + Math.floor(Math.random() * 6800);
      const p = new Uint8Array(randomBytes(size));
      if (k % 2 === 0) p.set(base.subarray(0, Math.min(base.length, size)));
      await send(p);
      report.oversized++;
    }
  }
  await Bun.sleep(200);
  sock.close();
  print(report);
}

if (import.meta.main) {
  const [cmd, json] = process.argv.slice(2);
  const args = JSON.parse(json ?? "{}");
  if (cmd === "member") await member(args as MemberArgs);
  else if (cmd === "blast") await blast(args as BlastArgs);
  else {
    console.error("usage: gossip-tool member|blast '<json>'");
    process.exit(2);
  }
}

/** The tool as one JavaScript file to write into a host (hosts may not see the repository). */
export async function bundleGossipTool(): Promise<string> {
  const out = await Bun.build({ entrypoints: [import.meta.path], target: "bun" });
  if (!out.success) throw new Error(`bundling gossip-tool: ${out.logs.join("\n")}`);
  return (await out.outputs[0]?.text()) ?? "";
}
