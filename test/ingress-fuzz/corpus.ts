/**
 * Minimal requests for each class of disagreement the differential fuzz has found between the
 * ingress and node:http, run as fixed cases beside the generated ones (a regression list: each
 * must pass the oracle). They name the service as CANON_HASH, like generated cases.
 */
import { CANON_HASH } from "./generate.ts";

const HOST = `${CANON_HASH}.localhost`;
const SMUGGLED = `GET /smuggled HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
const chunked = (body: string): string =>
  `POST / HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;

export const CORPUS: readonly (readonly [name: string, bytes: string])[] = [
  // found on 8a7ea30, fixed in dbd9fa0
  [
    "Connection: content-length (the body reached the service without its length: smuggled)",
    `POST / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: content-length\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  ],
  [
    "Connection: content-length in HTTP/1.0",
    `POST / HTTP/1.0\r\nHost: ${HOST}\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello`,
  ],
  [
    "Connection: transfer-encoding",
    `POST / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  ],
  ["Connection: host", `GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: host\r\n\r\n`],
  [
    "Transfer-Encoding: chunked\\xa0",
    `POST / HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\xa0\r\n\r\n0\r\n\r\n`,
  ],
  ["Content-Length: \\xa05", `POST / HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: \xa05\r\n\r\nhello`],
  ["chunk size, tab, junk", chunked("1\tjunk\r\na\r\n0\r\n\r\n")],
  ["chunk size, space, junk", chunked("1 junk\r\na\r\n0\r\n\r\n")],
  ["NUL in a chunk extension", chunked("1;e\x00xt\r\na\r\n0\r\n\r\n")],
  ["obs-fold in a trailer", chunked("0\r\nX-T: a\r\n folded\r\n\r\n")],
  ["space before a trailer's colon", chunked("0\r\nX-T : v\r\n\r\n")],
  ["tab in the request-target", `GET /a\tb HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  // found on dbd9fa0
  ["chunk extension without a name", chunked("1;\r\na\r\n0\r\n\r\n")],
  ["Content-Length as a trailer field", chunked("0\r\nContent-Length: 5\r\n\r\n")],
  ["Transfer-Encoding as a trailer field", chunked("0\r\nTransfer-Encoding: chunked\r\n\r\n")],
  ["byte 0xff in the request-target", `GET /\xff HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ["byte 0xa0 in the request-target", `GET /a\xa0b HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  ["method PRI (the HTTP/2 preface's)", `PRI / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`],
  [
    "two Content-Length headers, same number, different text",
    `POST / HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 02\r\nContent-Length: 2\r\n\r\nhi`,
  ],
  // the private-preview token (issue 15): never passed to a service, by header or by cookie
  ["x-hashd-bypass header", `GET / HTTP/1.1\r\nHost: ${HOST}\r\nX-Hashd-Bypass: secret-token\r\n\r\n`],
  [
    "hashd-bypass cookies among others, in any case",
    `GET / HTTP/1.1\r\nHost: ${HOST}\r\nCookie: a=b; HASHD-Bypass=t1;c=d\r\nCookie: hashd-bypass=t2\r\n\r\n`,
  ],
  // sticky cookies (issue 16) in several Cookie lines, one beside the token: the service gets them all
  [
    "sticky cookies in several Cookie lines",
    `GET / HTTP/1.1\r\nHost: ${HOST}\r\nCookie: hashd-prod=${"0".repeat(32)}; hashd-bypass=t\r\nCookie: x=1; hashd-api=y\r\n\r\n`,
  ],
];
