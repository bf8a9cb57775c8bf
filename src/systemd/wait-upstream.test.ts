import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import {
  formatUpstreamTarget,
  parseUpstreamTarget,
  processAlive,
  type UpstreamTarget,
  waitUpstream,
  waitUpstreamMain,
} from "./wait-upstream.ts";

describe("upstream targets", () => {
  test.each([
    ["unix:/run/hashd/upstream/x/upstream.sock", { unix: "/run/hashd/upstream/x/upstream.sock" }],
    ["tcp:127.0.0.1:8080", { hostname: "127.0.0.1", port: 8080 }],
    ["tcp:[::1]:80", { hostname: "::1", port: 80 }],
  ])("%p parses", (text, target) => {
    expect(parseUpstreamTarget(text)).toEqual(target as UpstreamTarget);
  });

  test.each(["unix:relative", "tcp:127.0.0.1", "tcp:127.0.0.1:0", "tcp:127.0.0.1:70000", "tcp:host:80", "x"])(
    "%p is refused",
    (text) => {
      expect(() => parseUpstreamTarget(text)).toThrow(/bad upstream/);
    },
  );

  test("format and parse round-trip", () => {
    for (const t of [{ unix: "/a/b" }, { hostname: "127.0.0.1", port: 1 }]) {
      expect(parseUpstreamTarget(formatUpstreamTarget(t))).toEqual(t);
    }
  });
});

describe("waiting for the upstream", () => {
  let server: Server | undefined;
  let dir: string | undefined;
  afterEach(() => {
    server?.close();
    server = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test("retries with backoff until a connection succeeds", async () => {
    let calls = 0;
    const sleeps: number[] = [];
    const attempts = await waitUpstream(
      { unix: "/x" },
      {
        connect: async () => {
          calls++;
          if (calls < 6) throw new Error("ECONNREFUSED");
        },
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      },
    );
    expect(attempts).toBe(6);
    expect(sleeps).toEqual([5, 10, 20, 40, 80]);
  });

  test("gives up at the time-out with the last error", async () => {
    await expect(
      waitUpstream(
        { unix: "/x" },
        {
          timeoutMs: 30,
          connect: async () => {
            throw new Error("ENOENT");
          },
        },
      ),
    ).rejects.toThrow("ENOENT");
  });

  test("stops waiting when the program is gone", async () => {
    let alive = 3;
    await expect(
      waitUpstream(
        { unix: "/x" },
        {
          connect: async () => {
            throw new Error("ENOENT");
          },
          sleep: async () => {},
          alive: () => --alive > 0,
        },
      ),
    ).rejects.toThrow(/the program exited before it accepted a connection \(ENOENT\)/);
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(2 ** 22 + 1)).toBe(false);
  });

  test("a unix socket that starts listening late is waited for", async () => {
    dir = mkdtempSync(`${tmpdir()}/hashd-upstream-`);
    const path = `${dir}/upstream.sock`;
    setTimeout(() => {
      server = createServer((c) => c.end()).listen(path);
    }, 150);
    const started = Date.now();
    const attempts = await waitUpstream({ unix: path }, { timeoutMs: 5000 });
    expect(attempts).toBeGreaterThan(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  test("a TCP port that listens answers at once", async () => {
    const listening = createServer((c) => c.end());
    server = listening;
    await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
    const port = (listening.address() as { port: number }).port;
    expect(await waitUpstream({ hostname: "127.0.0.1", port }, { timeoutMs: 2000 })).toBe(1);
  });

  test("the sub-command refuses a bad target with usage", async () => {
    const lines: string[] = [];
    expect(await waitUpstreamMain([], (l) => lines.push(l))).toBe(1);
    expect(await waitUpstreamMain(["tcp:nowhere"], (l) => lines.push(l))).toBe(1);
    expect(lines.join("\n")).toContain("usage: hashd wait-upstream");
    expect(lines.join("\n")).toContain("bad upstream");
  });
});
