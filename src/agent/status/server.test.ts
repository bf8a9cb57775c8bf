import { describe, expect, test } from "bun:test";
import { fillStore, H } from "../../../test/support/status/fixtures.ts";
import { SseReader } from "../../../test/support/status/sse-reader.ts";
import { StateStore } from "../state/store.ts";
import { startStatusServer } from "./server.ts";
import { storeStatusSource } from "./source.ts";

describe("startStatusServer", () => {
  test("serves on 127.0.0.1 by default; stop() ends open SSE streams and frees the port", async () => {
    const store = new StateStore(":memory:");
    fillStore(store);
    const source = storeStatusSource(store, (h) => `http://${h}.z/`, { pollMs: 20 });
    const server = startStatusServer({ port: 0 }, source, { heartbeatMs: 60_000 });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
      const page = await fetch(server.url);
      expect(await page.text()).toContain(H.web2);
      const res = await fetch(`${server.url}events`);
      const sse = new SseReader(res.body as ReadableStream<Uint8Array>);
      await sse.next("patch");
      store.event(H.db, "note", "over a real socket");
      expect((await sse.next("patch")).data).toContain("over a real socket");
      await server.stop();
      await expect(sse.next("patch", 1000)).rejects.toThrow();
      await expect(fetch(server.url)).rejects.toThrow();
    } finally {
      await server.stop();
      store.close();
    }
  });
});
