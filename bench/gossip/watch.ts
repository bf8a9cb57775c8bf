/**
 * Runs inside each sandbox host (bundled by bundleWatcher() and written into the host): watches one
 * system's view of the cluster and prints a JSON line, stamped with the wall clock (all hosts share
 * the machine's clock), each time something changes.
 *
 *   bun watch.js hashd <intervalMs>   polls the agent's control API (/v1/members, /v1/aliases):
 *       {t, kind: "member", name, state}, {t, kind: "state", name, boot, seq}, {t, kind: "alias", name, hash}
 *   bun watch.js serf <intervalMs>    polls `members` over Serf's RPC (127.0.0.1:7373) and streams
 *       its user events: {t, kind: "member", name, state}, {t, kind: "user", name, payload}
 *
 * Serf's member status is read by polling like hashd's (its member events are coalesced for
 * seconds before handlers or RPC streams see them); user events are pushed as they arrive.
 */
import { connect, type Socket } from "node:net";
import { decodeMultiStream, encode } from "@msgpack/msgpack";

const print = (v: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...v })}\n`);

async function watchHashd(intervalMs: number): Promise<void> {
  const members = new Map<string, string>();
  const versions = new Map<string, string>();
  const aliases = new Map<string, string>();
  let down = false;
  for (;;) {
    const started = Date.now();
    try {
      const get = async (path: string) => {
        const r = await fetch(`http://agent${path}`, {
          unix: "/run/hashd/control.sock",
          signal: AbortSignal.timeout(2000),
        });
        return r.json();
      };
      const m = (await get("/v1/members")) as {
        members: { name: string; state: string; stateVersion: { boot: number; seq: number } | null }[];
      };
      const t = Date.now();
      down = false;
      for (const x of m.members) {
        if (members.get(x.name) !== x.state) {
          members.set(x.name, x.state);
          print({ t, kind: "member", name: x.name, state: x.state });
        }
        const v = x.stateVersion ? `${x.stateVersion.boot}.${x.stateVersion.seq}` : "";
        if (versions.get(x.name) !== v) {
          versions.set(x.name, v);
          if (x.stateVersion) print({ t, kind: "state", name: x.name, ...x.stateVersion });
        }
      }
      const a = (await get("/v1/aliases")) as { aliases: { name: string; hash: string | null }[] };
      const ta = Date.now();
      for (const x of a.aliases) {
        if (aliases.get(x.name) !== String(x.hash)) {
          aliases.set(x.name, String(x.hash));
          print({ t: ta, kind: "alias", name: x.name, hash: x.hash });
        }
      }
    } catch {
      if (!down) print({ kind: "down" });
      down = true;
      members.clear();
      versions.clear();
    }
    await Bun.sleep(Math.max(0, intervalMs - (Date.now() - started)));
  }
}

/** One Serf RPC connection: msgpack header (+ body) out, header (+ body) back. */
async function serfRpc(): Promise<{
  sock: Socket;
  next: () => Promise<Record<string, unknown>>;
  seq: () => number;
}> {
  const sock = connect(7373, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  const it = decodeMultiStream(sock)[Symbol.asyncIterator]();
  const next = async () => {
    const r = await it.next();
    if (r.done) throw new Error("serf rpc closed");
    return r.value as Record<string, unknown>;
  };
  let n = 0;
  sock.write(encode({ Command: "handshake", Seq: n++ }));
  sock.write(encode({ Version: 1 }));
  const h = await next();
  if (h.Error) throw new Error(String(h.Error));
  return { sock, next, seq: () => n++ };
}

async function pollSerfMembers(intervalMs: number): Promise<void> {
  const members = new Map<string, string>();
  for (;;) {
    let rpc: Awaited<ReturnType<typeof serfRpc>> | undefined;
    try {
      rpc = await serfRpc();
      for (;;) {
        const started = Date.now();
        rpc.sock.write(encode({ Command: "members", Seq: rpc.seq() }));
        const h = await rpc.next();
        if (h.Error) throw new Error(String(h.Error));
        const body = (await rpc.next()) as { Members: { Name: string; Status: string }[] };
        const t = Date.now();
        for (const m of body.Members) {
          if (members.get(m.Name) !== m.Status) {
            members.set(m.Name, m.Status);
            print({ t, kind: "member", name: m.Name, state: m.Status });
          }
        }
        await Bun.sleep(Math.max(0, intervalMs - (Date.now() - started)));
      }
    } catch {
      rpc?.sock.destroy();
      members.clear();
      await Bun.sleep(200);
    }
  }
}

async function streamSerfEvents(): Promise<void> {
  for (;;) {
    let rpc: Awaited<ReturnType<typeof serfRpc>> | undefined;
    try {
      rpc = await serfRpc();
      rpc.sock.write(encode({ Command: "stream", Seq: rpc.seq() }));
      rpc.sock.write(encode({ Type: "user" }));
      const ack = await rpc.next();
      if (ack.Error) throw new Error(String(ack.Error));
      for (;;) {
        await rpc.next(); // header
        const ev = await rpc.next();
        const payload = ev.Payload instanceof Uint8Array ? new TextDecoder().decode(ev.Payload) : "";
        print({ kind: "user", name: ev.Name, payload });
      }
    } catch {
      rpc?.sock.destroy();
      await Bun.sleep(200);
    }
  }
}

if (import.meta.main) {
  const [system, interval] = process.argv.slice(2);
  const ms = Number(interval ?? 50);
  if (system === "hashd") await watchHashd(ms);
  else if (system === "serf") await Promise.all([pollSerfMembers(ms), streamSerfEvents()]);
  else {
    console.error("usage: watch hashd|serf <intervalMs>");
    process.exit(2);
  }
}

/** The watcher as one JavaScript file to write into a host. */
export async function bundleWatcher(): Promise<string> {
  const out = await Bun.build({ entrypoints: [import.meta.path], target: "bun" });
  if (!out.success) throw new Error(`bundling the watcher: ${out.logs.join("\n")}`);
  return (await out.outputs[0]?.text()) ?? "";
}
