import { describe, expect, test } from "bun:test";
import { HASH_A, HASH_B } from "../../../test/support/ingress/servers.ts";
import type { HashUrlAccess } from "../../model/config.ts";
import {
  type AccessFacts,
  bypassCookieLine,
  decideAccess,
  isLocalClient,
  safeLocation,
  takeBypassCookies,
  takeBypassParam,
  type Via,
} from "./access.ts";
import { BypassSecret } from "./bypass-token.ts";

const TOKEN = "0123456789abcdef0123456789abcdef";
const secret = new BypassSecret(TOKEN);
const NOW = 1_700_000_000_000;

function facts(over: Partial<AccessFacts>): AccessFacts {
  return {
    mode: "token",
    via: "host",
    hash: HASH_A,
    aliased: false,
    local: false,
    header: undefined,
    cookies: [],
    query: undefined,
    ...over,
  };
}

/** null: no token configured */
const decide = (over: Partial<AccessFacts>, s: BypassSecret | null = secret) =>
  decideAccess(facts(over), s ?? undefined, NOW).kind;

describe("the access decision", () => {
  // mode x how the hash was named x aliased, for a client elsewhere with no token
  const table: [HashUrlAccess, Via, boolean, "allow" | "deny"][] = [
    ["public", "host", false, "allow"],
    ["public", "path", false, "allow"],
    ["aliased", "host", true, "allow"],
    ["aliased", "path", true, "allow"],
    ["aliased", "host", false, "deny"],
    ["aliased", "path", false, "deny"],
    ["token", "host", true, "deny"],
    ["token", "path", true, "deny"],
    // alias URLs are public in every mode; a proven hop was checked by the member it came through
    ["token", "alias", false, "allow"],
    ["aliased", "alias", false, "allow"],
    ["token", "hop", false, "allow"],
    ["aliased", "hop", false, "allow"],
  ];
  test.each(table)("%s, by %s, aliased %p: %s", (mode, via, aliased, expected) => {
    expect(decide({ mode, via, aliased })).toBe(expected);
  });

  test("a client on this host (a service through HASHD_INGRESS) is let through in every mode", () => {
    for (const mode of ["public", "aliased", "token"] as const)
      for (const via of ["host", "path"] as const) expect(decide({ mode, via, local: true })).toBe("allow");
  });

  test("the token in the header opens a hash; another case, length or a prefix does not", () => {
    expect(decide({ header: TOKEN })).toBe("allow");
    for (const wrong of [
      TOKEN.toUpperCase(),
      TOKEN.slice(0, -1),
      `${TOKEN}0`,
      ` ${TOKEN}`,
      "",
      TOKEN.slice(0, 16),
      "x".repeat(100_000),
    ])
      expect(decide({ header: wrong })).toBe("deny");
  });

  test("without a token configured nothing but the mode opens a hash", () => {
    expect(decide({ header: TOKEN }, null)).toBe("deny");
    expect(decide({ query: TOKEN }, null)).toBe("deny");
    expect(decide({ mode: "public" }, null)).toBe("allow");
  });

  test("a cookie opens the one hash it was made for, until it expires", () => {
    const cookie = secret.cookieFor(HASH_A, NOW);
    expect(decide({ cookies: [cookie] })).toBe("allow");
    expect(decide({ cookies: [cookie], hash: HASH_B })).toBe("deny");
    // any of the few cookies sent may be the right one
    expect(decide({ cookies: ["v1.1.x", cookie] })).toBe("allow");
    const late = decideAccess(facts({ cookies: [cookie] }), secret, NOW + 8 * 86_400_000).kind;
    expect(late).toBe("deny");
    // the token itself is not a cookie, nor is a cookie made with another token
    expect(decide({ cookies: [TOKEN] })).toBe("deny");
    const other = new BypassSecret("f".repeat(32)).cookieFor(HASH_A, NOW);
    expect(decide({ cookies: [other] })).toBe("deny");
    // a cookie with its expiry moved later fails its MAC
    const [, expires, mac] = cookie.split(".");
    expect(decide({ cookies: [`v1.${Number(expires) + 1}.${mac}`] })).toBe("deny");
  });

  test("?hashd-bypass=: the right token redirects with a cookie, a wrong one is a 404 unless open anyway", () => {
    expect(decideAccess(facts({ query: TOKEN }), secret, NOW)).toEqual({ kind: "redirect", cookie: true });
    expect(decideAccess(facts({ query: TOKEN, via: "path" }), secret, NOW)).toEqual({
      kind: "redirect",
      cookie: true,
    });
    expect(decide({ query: "wrong" })).toBe("deny");
    expect(decide({ query: TOKEN.toUpperCase() })).toBe("deny");
    // open anyway: the parameter is still taken out of the URL, without a cookie
    expect(decideAccess(facts({ mode: "public", query: "wrong" }), secret, NOW)).toEqual({
      kind: "redirect",
      cookie: false,
    });
    // an alias URL or a hop: no cookie (there is no hash host to scope it to)
    expect(decideAccess(facts({ via: "alias", query: TOKEN }), secret, NOW)).toEqual({
      kind: "redirect",
      cookie: false,
    });
  });
});

describe("the parameter, the cookie header, the cookie line", () => {
  test("takeBypassParam takes every spelling of the parameter out and keeps the rest in order", () => {
    expect(takeBypassParam("/a?b=1")).toBeUndefined();
    expect(takeBypassParam("/a?x=hashd-bypass")).toBeUndefined();
    expect(takeBypassParam(`/a?hashd-bypass=${TOKEN}`)).toEqual({ rest: "/a", token: TOKEN });
    expect(takeBypassParam(`/a?b=1&hashd-bypass=${TOKEN}&c=2`)).toEqual({ rest: "/a?b=1&c=2", token: TOKEN });
    expect(takeBypassParam("/a?HASHD-BYPASS=t&hashd%2Dbypass=u&c")).toEqual({ rest: "/a?c", token: "t" });
    expect(takeBypassParam("/a?hashd-bypass")).toEqual({ rest: "/a", token: "" });
    expect(takeBypassParam("/a?hashd-bypass=%41%zz")).toEqual({ rest: "/a", token: "%41%zz" });
  });

  test("takeBypassCookies keeps the other cookies and bounds how many values it takes", () => {
    expect(takeBypassCookies("a=1; b=2")).toBeUndefined();
    expect(takeBypassCookies("a=1; hashd-bypass=v1.2.x; b=2")).toEqual({
      rest: "a=1; b=2",
      values: ["v1.2.x"],
    });
    expect(takeBypassCookies("HASHD-Bypass=x")).toEqual({ rest: "", values: ["x"] });
    const many = Array.from({ length: 50 }, (_, i) => `hashd-bypass=${i}`).join("; ");
    expect(takeBypassCookies(many)?.values).toEqual(["0", "1", "2", "3"]);
    expect(takeBypassCookies(many)?.rest).toBe("");
  });

  test("the cookie is host-only, HttpOnly, SameSite=Lax, scoped to the hash's host or /h/<hash>/", () => {
    expect(bypassCookieLine("v", undefined, 60)).toBe(
      "hashd-bypass=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax",
    );
    expect(bypassCookieLine("v", `/h/${HASH_A}`, 60)).toBe(
      `hashd-bypass=v; Path=/h/${HASH_A}/; Max-Age=60; HttpOnly; SameSite=Lax`,
    );
    expect(bypassCookieLine("v", undefined, 60)).not.toContain("Domain");
  });

  test("a redirect never points at another site", () => {
    expect(safeLocation("/a?b")).toBe("/a?b");
    expect(safeLocation("//evil.example/")).toBeUndefined();
    expect(safeLocation("/\\evil.example/")).toBeUndefined();
  });

  test("local clients: loopback, or the address the connection reached", () => {
    expect(isLocalClient("127.0.0.1", "127.0.0.1")).toBe(true);
    expect(isLocalClient("127.0.0.2", "10.0.0.1")).toBe(true);
    expect(isLocalClient("::1", "::1")).toBe(true);
    expect(isLocalClient("::ffff:127.0.0.1", "::ffff:127.0.0.1")).toBe(true);
    expect(isLocalClient("10.0.0.1", "10.0.0.1")).toBe(true);
    expect(isLocalClient("::ffff:10.0.0.1", "10.0.0.1")).toBe(true);
    expect(isLocalClient("10.0.0.2", "10.0.0.1")).toBe(false);
    expect(isLocalClient("", "")).toBe(false);
    expect(isLocalClient("128.0.0.1", "10.0.0.1")).toBe(false);
  });
});
