import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { HASH_A, startUpstream, tempDir, type Upstream } from "../../../test/support/ingress/servers.ts";

// 200 MB each way through an ingress in its own process, whose memory is read from /proc.
const SIZE = 200 * 1024 * 1024;
const CHUNK = 64 * 1024;
/** what the ingress may grow by while moving SIZE bytes (it holds a few socket buffers, not the body) */
const BUDGET = 48 * 1024 * 1024;

const dir = tempDir();
let upstream: Upstream;
let child: Subprocess<"pipe", "pipe", "inherit">;
let port = 0;

beforeAll(async () => {
  const socketPath = join(dir.path, "big.sock");
  upstream = startUpstream(socketPath, async (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/upload") {
      let received = 0;
      for await (const chunk of request.body as ReadableStream<Uint8Array>) received += chunk.length;
      return new Response(String(received));
    }
    return new Response(byteStream(Number(url.searchParams.get("n"))), {
      headers: { "content-length": url.searchParams.get("n") as string },
    });
  });
  child = Bun.spawn(
    [
      "bun",
      join(import.meta.dir, "../../../test/support/ingress/child.ts"),
      JSON.stringify({ routes: { [HASH_A]: socketPath } }),
    ],
    { stdin: "pipe", stdout: "pipe", stderr: "inherit" },
  );
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  port = (JSON.parse(new TextDecoder().decode(value)) as { port: number }).port;
  // warm up, then the baseline is what an idle ingress holds
  for (let i = 0; i < 20; i++) await (await fetch(url("/download?n=100000"))).arrayBuffer();
});

afterAll(async () => {
  child.stdin.end();
  await child.exited;
  upstream.stop(true);
  dir.remove();
});

function url(path: string): string {
  return `http://127.0.0.1:${port}/h/${HASH_A}${path}`;
}

/** A pull-based stream: a chunk is made only when the reader asks, so nothing piles up at the source. */
function byteStream(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = new Uint8Array(CHUNK).fill(97);
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(CHUNK, total - sent);
      sent += n;
      controller.enqueue(n === CHUNK ? chunk : chunk.subarray(0, n));
    },
  });
}

function memory(): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

describe("large bodies stream through in bounded memory", () => {
  test("200 MB upload", async () => {
    const before = memory();
    const response = await fetch(url("/upload"), {
      method: "POST",
      body: byteStream(SIZE),
      duplex: "half",
    } as RequestInit);
    expect(await response.text()).toBe(String(SIZE));
    const after = memory();
    console.log(`upload: ingress peak RSS ${mb(before.peak)} -> ${mb(after.peak)}`);
    expect(after.peak - before.peak).toBeLessThan(BUDGET);
  }, 60_000);

  test("200 MB download", async () => {
    const before = memory();
    const response = await fetch(url(`/download?n=${SIZE}`));
    let received = 0;
    for await (const chunk of response.body as ReadableStream<Uint8Array>) received += chunk.length;
    expect(received).toBe(SIZE);
    const after = memory();
    console.log(`download: ingress peak RSS ${mb(before.peak)} -> ${mb(after.peak)}`);
    expect(after.peak - before.peak).toBeLessThan(BUDGET);
  }, 60_000);

  test("200 MB download to a client that stops reading: the ingress holds back the service, not the bytes", async () => {
    const before = memory();
    let received = 0;
    let paused = false;
    const { promise: closed, resolve } = Promise.withResolvers<void>();
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data(s, data) {
          received += data.length;
          if (!paused && received > 4 * 1024 * 1024) {
            paused = true;
            s.pause();
          }
        },
        close: () => resolve(),
      },
    });
    socket.write(`GET /h/${HASH_A}/download?n=${SIZE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    while (!paused) await Bun.sleep(10);
    await Bun.sleep(1_000); // the service would have sent everything by now if nothing held it back
    const stalled = memory();
    console.log(`stalled reader: got ${mb(received)}; ingress RSS ${mb(stalled.rss)}`);
    expect(received).toBeLessThan(SIZE / 2);
    socket.resume();
    await closed;
    expect(received).toBeGreaterThan(SIZE); // body plus the response head
    expect(memory().peak - before.peak).toBeLessThan(BUDGET);
  }, 60_000);
});
