/**
 * The status page's figures at scale (issue 17): page weight, render time, /api/status size, and
 * the bytes per second one open tab receives over /events while in-flight counts move (traffic)
 * and while nothing changes. Prints one JSON object.
 *
 *   bun test/support/status/measure.ts [seconds=10]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateStore } from "../../../src/agent/state/store.ts";
import { startStatusServer, storeStatusSource } from "../../../src/agent/status/index.ts";
import { tickingClock } from "./fixtures.ts";
import { scaleFixture } from "./scale-fixture.ts";

const seconds = Number(process.argv[2] ?? 10);
const dir = mkdtempSync(join(tmpdir(), "hashd-status-measure-"));
const store = new StateStore(join(dir, "state.sqlite"), tickingClock(Date.now() - 3_600_000, 1000));
const fx = scaleFixture(store, Date.now());
const source = storeStatusSource(store, (h) => `http://${h}.hashd.test/`, fx.providers);
const server = startStatusServer({ address: "127.0.0.1", port: 0 }, source, { heartbeatMs: 15_000 });

async function streamBytes(ms: number): Promise<{ bytes: number; events: number }> {
  const ac = new AbortController();
  const res = await fetch(`${server.url}events`, { signal: ac.signal });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let bytes = 0;
  let events = 0;
  let head = ""; // the first message (the whole page's blocks, at connect) is not counted
  let first = true;
  const stop = Date.now() + ms;
  try {
    while (Date.now() < stop) {
      const r = await Promise.race([reader.read(), Bun.sleep(stop - Date.now()).then(() => null)]);
      if (!r || r.done) break;
      let text = new TextDecoder().decode(r.value);
      if (first) {
        head += text;
        const end = head.indexOf("\n\n");
        if (end < 0) continue;
        first = false;
        text = head.slice(end + 2);
      }
      bytes += Buffer.byteLength(text);
      events += (text.match(/^event: /gm) ?? []).length;
    }
  } finally {
    ac.abort();
    await reader.cancel().catch(() => {});
  }
  return { bytes, events };
}

try {
  const t0 = performance.now();
  const page = await (await fetch(server.url)).text();
  const firstMs = performance.now() - t0;
  const renders: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await (await fetch(server.url)).text();
    renders.push(performance.now() - t);
  }
  const api = await (await fetch(`${server.url}api/status`)).text();
  fx.traffic.on = true;
  const load = await streamBytes(seconds * 1000);
  fx.traffic.on = false;
  await Bun.sleep(1200);
  const quiet = await streamBytes(Math.min(seconds, 5) * 1000);
  renders.sort((a, b) => a - b);
  console.log(
    JSON.stringify(
      {
        pageBytes: Buffer.byteLength(page),
        firstPageMs: Math.round(firstMs * 10) / 10,
        medianPageMs: Math.round((renders[10] as number) * 10) / 10,
        apiStatusBytes: Buffer.byteLength(api),
        underLoad: { seconds, ...load, bytesPerSecond: Math.round(load.bytes / seconds) },
        quiet: { seconds: Math.min(seconds, 5), ...quiet },
      },
      null,
      2,
    ),
  );
} finally {
  await server.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
