import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { UnixSocketListener } from "bun";
import {
  complete,
  get,
  HASH_A,
  MapRoutes,
  rawConversation,
  rawExchange,
  tempDir,
} from "../../../test/support/ingress/servers.ts";
import { type Ingress, startIngress } from "./server.ts";

// A service that answers the first request on each connection (keep-alive, its body the head it
// received) and closes the connection when a second one comes: the race where a service drops an
// idle keep-alive connection just as the ingress reuses it from its pool.
const dir = tempDir();
const heads: { connection: number; head: string }[] = [];
let service: UnixSocketListener<{ id: number; requests: number; buf: string }>;
let ingress: Ingress;
let connections = 0;

beforeAll(() => {
  const path = join(dir.path, "service.sock");
  service = Bun.listen<{ id: number; requests: number; buf: string }>({
    unix: path,
    socket: {
      open(socket) {
        socket.data = { id: ++connections, requests: 0, buf: "" };
      },
      data(socket, data) {
        const state = socket.data;
        state.buf += Buffer.from(data).toString("latin1");
        for (let end = state.buf.indexOf("\r\n\r\n"); end >= 0; end = state.buf.indexOf("\r\n\r\n")) {
          const head = state.buf.slice(0, end + 4);
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          state.buf = state.buf.slice(end + 4 + length);
          heads.push({ connection: state.id, head });
          if (++state.requests > 1) {
            socket.end();
            return;
          }
          socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${head.length}\r\n\r\n${head}`);
        }
      },
    },
  });
  ingress = startIngress({
    config: { port: 0, member: "test" },
    routes: new MapRoutes().local(HASH_A, path),
    log: () => {},
  });
});

afterAll(async () => {
  await ingress.stop(0);
  service.stop(true);
  dir.remove();
});

/** Two requests on one client connection, the second sent once the first is answered; returns the second's answer. */
async function twoRequests(second: string): Promise<string> {
  let secondFrom = -1;
  const raw = await rawConversation(ingress.port, get("/one", `${HASH_A}.localhost`), (received, write) => {
    if (secondFrom < 0 && complete(received)) {
      secondFrom = received.length;
      write(second);
    }
    return secondFrom >= 0 && complete(received.slice(secondFrom));
  });
  return raw.slice(secondFrom);
}

describe("a pooled connection the service closed", () => {
  test("an idempotent request is sent again, with the same head, on a new connection", async () => {
    heads.length = 0;
    const raw = await twoRequests(get("/two?x=1", `${HASH_A}.localhost`, "x-custom: kept\r\n"));
    expect(raw).toStartWith("HTTP/1.1 200 OK\r\n");
    expect(raw).toContain(`x-hashd-hash: ${HASH_A}\r\n`);
    const sent = heads.filter((h) => h.head.startsWith("GET /two?x=1 "));
    expect(sent).toHaveLength(2);
    const [onPooled, onNew] = sent as [(typeof heads)[0], (typeof heads)[0]];
    expect(onNew.connection).not.toBe(onPooled.connection);
    expect(onNew.head).toBe(onPooled.head);
    expect(onNew.head).toContain("x-custom: kept\r\nx-forwarded-for: 127.0.0.1\r\n");
    expect(raw).toContain(onNew.head); // the service's answer is the head it received
  });

  test("a POST is not sent twice: the client gets a 502", async () => {
    heads.length = 0;
    const post = `POST /pay HTTP/1.1\r\nHost: ${HASH_A}.localhost\r\ncontent-length: 3\r\n\r\nabc`;
    const raw = await twoRequests(post);
    expect(raw).toStartWith("HTTP/1.1 502 ");
    expect(raw).toContain("closed the connection without an answer");
    expect(heads.filter((h) => h.head.startsWith("POST /pay "))).toHaveLength(1);
  });

  test("the ingress still serves afterwards", async () => {
    const raw = await rawExchange(ingress.port, get("/three", `${HASH_A}.localhost`), 1000, (r) =>
      r.includes("GET /three"),
    );
    expect(raw).toStartWith("HTTP/1.1 200 OK\r\n");
  });
});
