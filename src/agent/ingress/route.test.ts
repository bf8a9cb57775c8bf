import { describe, expect, test } from "bun:test";
import { HASH_A, HASH_B } from "../../../test/support/ingress/servers.ts";
import { plainAliasRoute } from "../../model/alias-route.ts";
import { routeTarget } from "./route.ts";

const aliases = { resolveAlias: (name: string) => (name === "prod" ? plainAliasRoute(HASH_A) : undefined) };
const route = (host: string | undefined, target: string, hopHash?: string) =>
  routeTarget({ host, target, hopHash }, "localhost", aliases);

describe("routeTarget", () => {
  const ok: [string, string | undefined, string, object][] = [
    [
      "hash host",
      `${HASH_A}.localhost`,
      "/x?y=1",
      { hash: HASH_A, via: "host", path: "/x?y=1", prefix: undefined },
    ],
    ["hash host with port", `${HASH_A}.localhost:8080`, "/", { hash: HASH_A, via: "host", path: "/" }],
    ["upper-case host", `${HASH_A.toUpperCase()}.LOCALHOST`, "/", { hash: HASH_A, via: "host" }],
    ["fqdn dot", `${HASH_A}.localhost.`, "/", { hash: HASH_A, via: "host" }],
    ["alias host", "prod.localhost", "/a", { hash: HASH_A, via: "alias", path: "/a" }],
    [
      "path prefix on IP",
      "127.0.0.1:8080",
      `/h/${HASH_B}/a/b?q`,
      { hash: HASH_B, via: "path", path: "/a/b?q" },
    ],
    ["path prefix keeps prefix", "localhost", `/h/${HASH_B}/`, { path: "/", prefix: `/h/${HASH_B}` }],
    ["path prefix on foreign host", "example.com", `/h/${HASH_B}/`, { hash: HASH_B, via: "path" }],
    ["path prefix on IPv6", "[::1]:8080", `/h/${HASH_B}/`, { hash: HASH_B, via: "path" }],
    // the hash host owns its path space: its own /h/... paths are not captured
    [
      "host wins over prefix",
      `${HASH_A}.localhost`,
      `/h/${HASH_B}/x`,
      { hash: HASH_A, path: `/h/${HASH_B}/x` },
    ],
    ["dots inside names are fine", `${HASH_A}.localhost`, "/a.b/..c/c..", { hash: HASH_A }],
  ];
  for (const [name, host, target, expected] of ok) {
    test(`routes: ${name}`, () => {
      const routing = route(host, target);
      expect(routing.ok).toBe(true);
      expect(routing).toMatchObject(expected);
    });
  }

  const refused: [string, string | undefined, string, number, RegExp][] = [
    ["missing host (HTTP/1.0)", undefined, "/", 404, /hashd ingress/],
    ["empty host", "", "/", 400, /empty Host/],
    ["host with space", "a b.localhost", "/", 400, /malformed Host/],
    ["host with slash", "a/b.localhost", "/", 400, /malformed Host/],
    ["hash of wrong alphabet in host", `${"e".repeat(32)}.localhost`, "/", 400, /malformed hash in Host/],
    ["two labels", `x.${HASH_A}.localhost`, "/", 400, /more than one label/],
    ["bad label", "-x-.localhost", "/", 400, /malformed name/],
    ["unknown alias", "staging.localhost", "/", 404, /no alias named staging/],
    ["short hash in host (taken as alias)", `${HASH_A.slice(1)}.localhost`, "/", 404, /no alias/],
    ["foreign host", "example.com", "/", 421, /not in zone localhost/],
    ["host ending in the zone without its dot", "notlocalhost", "/", 421, /not in zone localhost/],
    ["empty label before the zone", ".localhost", "/", 400, /malformed name in Host/],
    ["bare zone", "localhost:8080", "/", 404, /hashd ingress of localhost/],
    ["short hash in path", "localhost", `/h/${HASH_A.slice(1)}/`, 400, /malformed hash in path/],
    ["long hash in path", "localhost", `/h/${HASH_A}0/`, 400, /malformed hash in path/],
    ["wrong alphabet in path", "localhost", `/h/${"u".repeat(32)}/`, 400, /malformed hash in path/],
    ["encoded hash in path", "localhost", `/h/%30${HASH_A.slice(1)}/`, 400, /malformed hash in path/],
    ["dot-dot", `${HASH_A}.localhost`, "/a/../b", 400, /\. or \.\. segment/],
    ["trailing dot-dot", `${HASH_A}.localhost`, "/a/..", 400, /segment/],
    ["dot", `${HASH_A}.localhost`, "/./a", 400, /segment/],
    ["encoded dot-dot", `${HASH_A}.localhost`, "/a/%2E%2e/b", 400, /segment/],
    ["half-encoded", `${HASH_A}.localhost`, "/a/.%2e/b", 400, /segment/],
    ["tomcat params", `${HASH_A}.localhost`, "/a/..;x=1/b", 400, /segment/],
    ["prefix traversal", "localhost", `/h/${HASH_A}/../${HASH_B}/`, 400, /segment/],
    ["absolute-form", `${HASH_A}.localhost`, "http://x/", 400, /must be a path/],
    ["asterisk", `${HASH_A}.localhost`, "*", 400, /must be a path/],
  ];
  for (const [name, host, target, status, message] of refused) {
    test(`refuses: ${name}`, () => {
      const routing = route(host, target);
      expect(routing.ok).toBe(false);
      if (routing.ok) return;
      expect(routing.status).toBe(status as typeof routing.status);
      expect(routing.message).toMatch(message);
    });
  }

  test("dot-dot in the query string is not a path segment", () => {
    expect(route(`${HASH_A}.localhost`, "/a?x=../b").ok).toBe(true);
  });

  test("/h/<hash> without a slash redirects, keeping the query", () => {
    expect(route("localhost", `/h/${HASH_A}?a=1`)).toEqual({
      ok: false,
      status: 308,
      message: `see /h/${HASH_A}/?a=1`,
      location: `/h/${HASH_A}/?a=1`,
    });
  });

  test("a peer's hop names the hash; its /h/ prefix is stripped", () => {
    expect(route(`prod.localhost`, "/x", HASH_B)).toMatchObject({
      ok: true,
      hash: HASH_B,
      via: "hop",
      path: "/x",
    });
    expect(route("10.0.0.1:80", `/h/${HASH_B}/x`, HASH_B)).toMatchObject({
      hash: HASH_B,
      path: "/x",
      prefix: `/h/${HASH_B}`,
    });
    expect(route("x", "/", "not-a-hash")).toMatchObject({ ok: false, status: 400 });
  });

  test("another zone", () => {
    const routing = routeTarget(
      { host: `${HASH_A}.hashd.example.org`, target: "/" },
      "hashd.example.org",
      aliases,
    );
    expect(routing).toMatchObject({ ok: true, hash: HASH_A });
    expect(
      routeTarget({ host: `${HASH_A}.localhost`, target: "/" }, "hashd.example.org", aliases),
    ).toMatchObject({
      status: 421,
    });
  });
});

describe("routeTarget (the Host header and the raw request target)", () => {
  test("routes by the Host header and the raw path", () => {
    expect(
      routeTarget({ host: "127.0.0.1", target: `/h/${HASH_B}/p?q=1` }, "localhost", aliases),
    ).toMatchObject({
      ok: true,
      hash: HASH_B,
      path: "/p?q=1",
    });
    expect(routeTarget({ host: `${HASH_A}.localhost`, target: "/" }, "localhost", aliases)).toMatchObject({
      ok: true,
      hash: HASH_A,
      via: "host",
    });
  });
});
