import { describe, expect, test } from "bun:test";
import { BodyFraming } from "./body-framing.ts";
import { ChunkedScanner } from "./chunked.ts";
import { HttpParseError, parseRequestHead, type RequestHead, trimOws } from "./http1-head.ts";
import { parseResponseHead } from "./response-head.ts";
import { Scratch } from "./scratch.ts";
import { type ForwardTo, writeUpstreamRequestHead } from "./upstream-head.ts";

const head = (lines: string[]) => lines.join("\r\n");

describe("parseRequestHead", () => {
  test("a plain GET keeps its headers in order and drops hop-by-hop ones", () => {
    const parsed = parseRequestHead(
      head([
        "GET /a?b HTTP/1.1",
        "Host: x.localhost",
        "Connection: keep-alive, X-Private",
        "X-Private: drop me",
        "Accept: */*",
        "Keep-Alive: 5",
        "TE: trailers",
        "X-Forwarded-For: 10.0.0.1",
        "X-Forwarded-Prefix: /evil",
        "User-Agent: t",
      ]),
    );
    expect(parsed).toMatchObject({
      method: "GET",
      target: "/a?b",
      minor: 1,
      host: "x.localhost",
      keepAlive: true,
    });
    expect(parsed.forwardedFor).toBe("10.0.0.1");
    expect(parsed.passthrough).toBe("Host: x.localhost\r\nAccept: */*\r\nUser-Agent: t\r\n");
  });

  test("bodies: Content-Length, chunked, equal repeated lengths", () => {
    expect(parseRequestHead(head(["POST / HTTP/1.1", "Host: h", "Content-Length: 12"])).contentLength).toBe(
      12,
    );
    expect(parseRequestHead(head(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: Chunked"])).chunked).toBe(
      true,
    );
    expect(
      parseRequestHead(head(["POST / HTTP/1.1", "Host: h", "Content-Length: 5", "content-length: 5, 5"]))
        .contentLength,
    ).toBe(5);
  });

  test("connection semantics", () => {
    expect(parseRequestHead(head(["GET / HTTP/1.1", "Host: h", "Connection: close"])).keepAlive).toBe(false);
    expect(parseRequestHead(head(["GET / HTTP/1.0"])).keepAlive).toBe(false);
    expect(parseRequestHead(head(["GET / HTTP/1.0", "Connection: keep-alive"])).keepAlive).toBe(true);
    const ws = parseRequestHead(
      head(["GET / HTTP/1.1", "Host: h", "Connection: Upgrade", "Upgrade: websocket"]),
    );
    expect(ws.upgrade).toBe("websocket");
    expect(
      parseRequestHead(head(["GET / HTTP/1.1", "Host: h", "Upgrade: websocket"])).upgrade,
    ).toBeUndefined();
  });

  const refused: [string, string, number][] = [
    [
      "CL and TE (smuggling)",
      head(["POST / HTTP/1.1", "Host: h", "Content-Length: 3", "Transfer-Encoding: chunked"]),
      400,
    ],
    [
      "differing lengths",
      head(["POST / HTTP/1.1", "Host: h", "Content-Length: 3", "Content-Length: 4"]),
      400,
    ],
    ["negative length", head(["POST / HTTP/1.1", "Host: h", "Content-Length: -1"]), 400],
    ["hex length", head(["POST / HTTP/1.1", "Host: h", "Content-Length: 0x10"]), 400],
    ["gzip coding", head(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: gzip, chunked"]), 501],
    ["TE in HTTP/1.0", head(["POST / HTTP/1.0", "Transfer-Encoding: chunked"]), 400],
    ["space before colon", head(["GET / HTTP/1.1", "Host : h"]), 400],
    ["obs-fold", head(["GET / HTTP/1.1", "Host: h", "X-A: 1", " folded"]), 400],
    ["bare LF", "GET / HTTP/1.1\r\nHost: h\nX: y", 400],
    ["bare CR", "GET / HTTP/1.1\r\nHost: h\rX: y", 400],
    ["NUL in value", head(["GET / HTTP/1.1", "Host: h", "X: a\0b"]), 400],
    ["two hosts", head(["GET / HTTP/1.1", "Host: a", "Host: b"]), 400],
    ["no host in 1.1", head(["GET / HTTP/1.1"]), 400],
    ["HTTP/2.0 line", head(["GET / HTTP/2.0", "Host: h"]), 505],
    ["garbage line", head(["GET /", "Host: h"]), 400],
    ["extra space", head(["GET  / HTTP/1.1", "Host: h"]), 400],
    ["bad method", head(["G(T / HTTP/1.1", "Host: h"]), 400],
    ["leading zeros in Content-Length", head(["POST / HTTP/1.1", "Host: h", "Content-Length: 02"]), 400],
    ["non-ASCII in the target", head(["GET /caf\xe9 HTTP/1.1", "Host: h"]), 400],
    ["PRI", head(["PRI / HTTP/1.1", "Host: h"]), 400],
    ["no colon", head(["GET / HTTP/1.1", "Host: h", "nonsense"]), 400],
  ];
  for (const [name, text, status] of refused) {
    test(`refuses ${name} with ${status}`, () => {
      let error: unknown;
      try {
        parseRequestHead(text);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HttpParseError);
      expect((error as HttpParseError).status).toBe(status as HttpParseError["status"]);
    });
  }

  test("framing headers are parsed, not passed on; Connection cannot name them or Host", () => {
    const parsed = parseRequestHead(
      head([
        "POST / HTTP/1.1",
        "Host: h",
        "Connection: content-length, host, transfer-encoding",
        "Content-Length:\t7 ",
        "X-A: 1",
      ]),
    );
    expect(parsed.contentLength).toBe(7);
    expect(parsed.host).toBe("h");
    expect(parsed.passthrough).toBe("Host: h\r\nX-A: 1\r\n");
  });

  test("only SP and HTAB are trimmed from values", () => {
    expect(trimOws(" \t a b\t ")).toBe("a b");
    expect(trimOws("\xa0chunked\xa0")).toBe("\xa0chunked\xa0");
    expect(() => parseRequestHead(head(["POST / HTTP/1.1", "Host: h", "Content-Length: 5\x0b"]))).toThrow(
      HttpParseError,
    );
  });

  test("absolute-form: the authority becomes the Host, the target its path and query", () => {
    const parsed = parseRequestHead(head(["GET HTTP://a.example:8080?q HTTP/1.1", "Host: other", "X: 1"]));
    expect(parsed.target).toBe("/?q");
    expect(parsed.host).toBe("a.example:8080");
    expect(parsed.passthrough).toBe("X: 1\r\nhost: a.example:8080\r\n");
    expect(() => parseRequestHead(head(["GET http://a.example/ HTTP/1.1"]))).toThrow(HttpParseError);
    expect(() => parseRequestHead(head(["GET ftp://a.example/ HTTP/1.1", "Host: h"]))).not.toThrow();
  });

  test("obs-text (bytes >= 0x80) in values passes through unchanged", () => {
    const text = Buffer.from("GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9", "latin1").toString("latin1");
    expect(parseRequestHead(text).passthrough).toBe("Host: h\r\nX-Name: caf\xe9\r\n");
  });
});

function upstreamRequestHead(head: RequestHead, to: ForwardTo): string {
  const out = new Scratch();
  writeUpstreamRequestHead(out, head, to);
  return out.toString();
}

describe("writeUpstreamRequestHead", () => {
  const parse = (lines: string[]) => parseRequestHead(head(lines));
  test("sets X-Forwarded-* and replaces what the client claimed", () => {
    const req = parse([
      "GET /h/x/a HTTP/1.1",
      "Host: h:1",
      "X-Forwarded-Host: evil",
      "X-Forwarded-For: 1.1.1.1",
    ]);
    const out = upstreamRequestHead(req, { path: "/a", prefix: "/h/x", clientAddress: "127.0.0.1" });
    expect(out).toBe(
      "GET /a HTTP/1.1\r\nHost: h:1\r\nx-forwarded-for: 1.1.1.1, 127.0.0.1\r\nx-forwarded-host: h:1\r\n" +
        "x-forwarded-proto: http\r\nx-forwarded-prefix: /h/x\r\n\r\n",
    );
  });
  test("a hop to a peer keeps the target and names the hash", () => {
    const req = parse(["GET /h/x/a HTTP/1.1", "Host: h"]);
    const out = upstreamRequestHead(req, {
      path: "/a",
      prefix: "/h/x",
      clientAddress: "10.0.0.9",
      hop: { member: "m1", hash: "x", proof: undefined },
    });
    expect(out).toStartWith("GET /h/x/a HTTP/1.1\r\n");
    expect(out).toContain("x-hashd-hop: m1\r\nx-hashd-hash: x\r\n");
    expect(out).not.toContain("x-forwarded-prefix");
  });
  test("a request from a peer keeps the peer's X-Forwarded-Host and -Proto", () => {
    const req = parse([
      "GET / HTTP/1.1",
      "Host: h",
      "X-Hashd-Hop: m1",
      "X-Forwarded-Host: orig",
      "X-Forwarded-Proto: https",
    ]);
    const out = upstreamRequestHead(req, { path: "/", prefix: undefined, clientAddress: "10.0.0.1" });
    expect(out).toContain("x-forwarded-host: orig\r\nx-forwarded-proto: https\r\n");
    expect(out).not.toContain("x-hashd-hop");
  });
  test("the framing header sent is the one the body was framed by", () => {
    const to = { path: "/", prefix: undefined, clientAddress: "a" };
    expect(upstreamRequestHead(parse(["POST / HTTP/1.1", "Host: h", "Content-Length: \t5 "]), to)).toContain(
      "content-length: 5\r\n",
    );
    const chunked = upstreamRequestHead(
      parse(["POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"]),
      to,
    );
    expect(chunked).toContain("transfer-encoding: chunked\r\n");
    expect(chunked).not.toContain("Transfer-Encoding");
  });
  test("upgrade and HTTP/1.0", () => {
    const ws = parse(["GET / HTTP/1.1", "Host: h", "Connection: upgrade", "Upgrade: websocket"]);
    expect(upstreamRequestHead(ws, { path: "/", prefix: undefined, clientAddress: "a" })).toContain(
      "connection: upgrade\r\nupgrade: websocket\r\n\r\n",
    );
    const old = parse(["GET / HTTP/1.0", "Host: h"]);
    expect(upstreamRequestHead(old, { path: "/", prefix: undefined, clientAddress: "a" })).toContain(
      "connection: close\r\n\r\n",
    );
  });
});

describe("parseResponseHead", () => {
  const parse = (text: string) => {
    const buf = Buffer.from(`${text}\r\n\r\n`, "latin1");
    return parseResponseHead(buf, buf.length - 4);
  };
  test("framing", () => {
    expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 20")).toEqual({
      status: 200,
      minor: 1,
      contentLength: 20,
      chunked: false,
      close: false,
    });
    expect(parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked")).toMatchObject({ chunked: true });
    expect(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked")).toMatchObject({ chunked: true });
    expect(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip")).toMatchObject({
      chunked: false,
      close: true,
    });
    expect(parse("HTTP/1.1 200 OK\r\nConnection: close")).toMatchObject({ close: true, contentLength: -1 });
    expect(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1")).toMatchObject({
      close: false,
    });
    expect(parse("HTTP/1.0 200 OK")).toMatchObject({ minor: 0, close: true });
    expect(parse("HTTP/1.1 204")).toMatchObject({ status: 204 });
    expect(parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket")).toMatchObject({ status: 101 });
    expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 7, 7")).toMatchObject({ contentLength: 7 });
    expect(parse("HTTP/1.1 200 OK\r\nCONTENT-LENGTH:  9 ")).toMatchObject({ contentLength: 9 });
  });
  for (const bad of [
    "HTTP/1.1 20 OK",
    "HTTP/2 200 OK",
    "ICY 200 OK",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2",
    "HTTP/1.1 200 OK\r\nContent-Length: x",
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      expect(() => parse(bad)).toThrow(HttpParseError);
    });
  }
});

describe("ChunkedScanner", () => {
  const body = "4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";
  test("finds the end of the body in one piece and at every split point", () => {
    const bytes = Buffer.from(`${body}NEXT`);
    expect(new ChunkedScanner().feed(bytes)).toBe(body.length);
    for (let split = 1; split < body.length; split++) {
      const scanner = new ChunkedScanner();
      expect(scanner.feed(bytes, 0, split)).toBe(-1);
      expect(scanner.feed(bytes, split, bytes.length)).toBe(body.length);
      expect(scanner.dataBytes).toBe(4 + 6 + 14);
    }
  });
  test("a body without trailers", () => {
    expect(new ChunkedScanner().feed(Buffer.from("0\r\n\r\n"))).toBe(5);
  });
  for (const bad of [
    "x\r\n",
    "4\r\nWikiX\r\n",
    "4\nWiki",
    "\r\n",
    "1234567890abc\r\n",
    "0\r\n\n",
    "1;\r\n",
    "1;;a\r\n",
    "1;a=\r\n",
    "1;a==b\r\n",
    "0\r\nContent-Length: 5\r\n\r\n",
    "0\r\ntransfer-encoding: chunked\r\n\r\n",
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      expect(() => new ChunkedScanner().feed(Buffer.from(bad))).toThrow(HttpParseError);
    });
  }
});

describe("BodyFraming", () => {
  const res = (status: number, contentLength: number, chunked = false) => ({
    status,
    minor: 1 as const,
    contentLength,
    chunked,
    close: false,
  });
  test("which responses have bodies", () => {
    expect(BodyFraming.forResponse(res(200, 10), "HEAD").done).toBe(true);
    expect(BodyFraming.forResponse(res(204, -1), "GET").done).toBe(true);
    expect(BodyFraming.forResponse(res(304, 10), "GET").done).toBe(true);
    expect(BodyFraming.forResponse(res(200, 0), "GET").done).toBe(true);
    expect(BodyFraming.forResponse(res(200, -1), "GET").untilClose).toBe(true);
    expect(BodyFraming.forResponse(res(200, 5, true), "GET").done).toBe(false);
  });
  test("a Content-Length body ends where its count does, across chunks", () => {
    const body = BodyFraming.forResponse(res(200, 10), "GET");
    expect(body.end(Buffer.from("HEAD123456"), 4, 502)).toBe(10); // 6 of 10
    expect(body.done).toBe(false);
    expect(body.end(Buffer.from("7890NEXT"), 0, 502)).toBe(4);
    expect(body.done).toBe(true);
    expect(body.bytes).toBe(10);
  });
  test("a close-delimited body ends at the close", () => {
    const body = BodyFraming.forResponse(res(200, -1), "GET");
    expect(body.end(Buffer.from("abc"), 0, 502)).toBe(3);
    body.closed();
    expect(body.done).toBe(true);
  });
  test("requests without a body share one finished framing", () => {
    const head = parseRequestHead("GET / HTTP/1.1\r\nHost: h");
    expect(BodyFraming.forRequest(head)).toBe(BodyFraming.forRequest(head));
    expect(BodyFraming.forRequest(head).done).toBe(true);
  });
});

describe("private previews' headers", () => {
  test("x-hashd-bypass and hashd-bypass cookies are taken out; other cookies stay where they were", () => {
    const head = parseRequestHead(
      [
        "GET / HTTP/1.1",
        "Host: h",
        "X-Hashd-Bypass:  tok ",
        "Cookie: a=1; hashd-bypass=c1; b=2",
        "Accept: application/json",
        "Cookie: HASHD-BYPASS=c2",
        "Cookie: d=4",
      ].join("\r\n"),
    );
    expect(head.bypass).toBe("tok");
    expect(head.bypassCookies).toEqual(["c1", "c2"]);
    expect(head.accept).toBe("application/json");
    expect(head.passthrough).toBe(
      "Host: h\r\nCookie: a=1; b=2\r\nAccept: application/json\r\nCookie: d=4\r\n",
    );
  });

  test("a request without them is passed on as one slice", () => {
    const head = parseRequestHead("GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1");
    expect([head.bypass, head.bypassCookies, head.passthrough]).toEqual([
      undefined,
      undefined,
      "Host: h\r\nCookie: a=1\r\n",
    ]);
  });
});
