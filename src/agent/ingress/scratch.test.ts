import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { Outbox } from "./outbox.ts";
import { Scratch } from "./scratch.ts";
import { writeWithLine } from "./upstream-head.ts";

/** A socket that takes at most `room` bytes per write, like a full kernel buffer. */
function cappedSocket(room: number) {
  const taken: string[] = [];
  const socket = {
    write(data: Uint8Array, offset = 0, length = data.length - offset) {
      const n = Math.min(room, length);
      taken.push(Buffer.from(data.subarray(offset, offset + n)).toString("latin1"));
      return n;
    },
  } as unknown as Socket<unknown>;
  return { socket, taken };
}

describe("Scratch", () => {
  test("builds text and bytes, and grows past its first size keeping what it holds", () => {
    const out = new Scratch();
    out.text("GET / HTTP/1.1\r\n");
    const big = Buffer.alloc(40_000, "a");
    out.bytes(big, 0, big.length);
    out.text("\r\n");
    expect(out.length).toBe(16 + 40_000 + 2);
    expect(out.toString()).toBe(`GET / HTTP/1.1\r\n${"a".repeat(40_000)}\r\n`);
  });

  test("reset starts over, and drops a buffer grown past 1 MiB", () => {
    const out = new Scratch();
    out.bytes(Buffer.alloc(2 * 1024 * 1024), 0, 2 * 1024 * 1024);
    expect(out.buf.length).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    out.reset().text("x");
    expect(out.buf.length).toBeLessThan(1024 * 1024);
    expect(out.toString()).toBe("x");
  });

  test("latin1 characters are written as one byte each", () => {
    const out = new Scratch();
    out.text("caf\xe9");
    expect([...out.buf.subarray(0, out.length)]).toEqual([0x63, 0x61, 0x66, 0xe9]);
  });

  test("writeWithLine puts the line after the status line and keeps the body", () => {
    const out = new Scratch();
    const response = Buffer.from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiNEXT");
    writeWithLine(out, response, response.length - 4, Buffer.from("x-hashd-hash: abc\r\n"));
    expect(out.toString()).toBe("HTTP/1.1 200 OK\r\nx-hashd-hash: abc\r\ncontent-length: 2\r\n\r\nhi");
  });
});

describe("Outbox.sendCopy", () => {
  test("what the socket does not take is copied, so reusing the buffer changes nothing queued", () => {
    const { socket, taken } = cappedSocket(4);
    const outbox = new Outbox();
    const out = new Scratch();
    out.text("0123456789");
    expect(outbox.sendCopy(socket, out.buf, out.length)).toBe(false);
    expect(outbox.bytes).toBe(6);
    out.reset().text("XXXXXXXXXX"); // the next build overwrites the buffer
    while (!outbox.flush(socket)) {}
    expect(taken.join("")).toBe("0123456789");
  });

  test("behind queued bytes it writes nothing and keeps the order", () => {
    const { socket, taken } = cappedSocket(3);
    const outbox = new Outbox();
    outbox.send(socket, Buffer.from("abcdef"));
    const out = new Scratch();
    out.text("ghi");
    expect(outbox.sendCopy(socket, out.buf, out.length)).toBe(false);
    out.reset().text("###");
    while (!outbox.flush(socket)) {}
    expect(taken.join("")).toBe("abcdefghi");
  });
});
