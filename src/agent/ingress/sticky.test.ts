import { describe, expect, test } from "bun:test";
import type { AliasRoute } from "../../model/alias-route.ts";
import {
  bucketOf,
  chooseAliasTarget,
  StickyUse,
  stickyCookieHash,
  stickyCookieLine,
  stickyFor,
  targetForBucket,
} from "./sticky.ts";

const V1 = "1".repeat(32);
const V2 = "2".repeat(32);
const PREVIEW = "p".repeat(32);

const route = (split: [string, number][], pinnable: string[] = split.map(([h]) => h)): AliasRoute => ({
  hash: split[0]?.[0] as string,
  split: split.length > 1 ? split.map(([hash, weight]) => ({ hash, weight })) : undefined,
  pinnable: new Set(pinnable),
});

const addresses = Array.from({ length: 2000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.7`);

describe("the stable split", () => {
  test("a bucket is a pure function of alias and address, 0-99, IPv4-mapped or not", () => {
    expect(bucketOf("prod", "10.0.0.1")).toBe(bucketOf("prod", "10.0.0.1"));
    expect(bucketOf("prod", "::ffff:10.0.0.1")).toBe(bucketOf("prod", "10.0.0.1"));
    // FNV-1a 32 of "prod\0" + address, mod 100, as computed by an independent implementation:
    // a change of the function would move every client at once, mid-rollout in a mixed cluster
    expect([bucketOf("prod", "10.0.0.1"), bucketOf("api", "10.0.0.1"), bucketOf("prod", "::1")]).toEqual([
      8, 73, 39,
    ]);
    for (const a of addresses) {
      const b = bucketOf("prod", a);
      expect(b >= 0 && b < 100 && Number.isInteger(b)).toBe(true);
    }
  });

  test("buckets spread evenly enough that a 10% weight gets about 10% of clients", () => {
    const split = [
      { hash: V1, weight: 90 },
      { hash: V2, weight: 10 },
    ];
    const canary = addresses.filter((a) => targetForBucket(split, bucketOf("prod", a)) === V2).length;
    expect(canary / addresses.length).toBeGreaterThan(0.07);
    expect(canary / addresses.length).toBeLessThan(0.13);
  });

  test("raising the canary's weight only moves clients to the canary, never back", () => {
    const at = (w: number) =>
      new Set(
        addresses.filter(
          (a) =>
            targetForBucket(
              [
                { hash: V1, weight: 100 - w },
                { hash: V2, weight: w },
              ],
              bucketOf("prod", a),
            ) === V2,
        ),
      );
    let before = at(5);
    for (const w of [25, 50, 75, 95]) {
      const now = at(w);
      for (const a of before) expect(now.has(a)).toBe(true);
      before = now;
    }
  });
});

describe("chooseAliasTarget", () => {
  const isLive = (h: string) => h !== "d".repeat(32);

  test("no cookie: the split decides and the response pins the client", () => {
    const c = chooseAliasTarget(route([[V1, 100]]), "prod", undefined, "10.0.0.1", true, isLive);
    expect(c).toEqual({ hash: V1, setCookie: true, pinned: false });
  });

  test("a cookie for a hash the alias may pin and that is live wins over the split", () => {
    const r = route([[V2, 100]], [V2, V1]); // V1: an earlier target
    expect(chooseAliasTarget(r, "prod", V1, "10.0.0.1", true, isLive)).toEqual({
      hash: V1,
      setCookie: false,
      pinned: true,
    });
  });

  test("hostile cookies are ignored: a private preview, a dead hash, sticky turned off", () => {
    const r = route([[V2, 100]], [V2, V1]);
    // a preview no alias points at: the cookie cannot open it through a public alias
    expect(chooseAliasTarget(r, "prod", PREVIEW, "10.0.0.1", true, () => true).hash).toBe(V2);
    expect(chooseAliasTarget(r, "prod", "d".repeat(32), "10.0.0.1", true, isLive).hash).toBe(V2);
    expect(
      chooseAliasTarget(route([[V2, 100]], [V2, "d".repeat(32)]), "prod", "d".repeat(32), "x", true, isLive)
        .hash,
    ).toBe(V2);
    expect(chooseAliasTarget(r, "prod", V1, "10.0.0.1", false, isLive)).toEqual({
      hash: V2,
      setCookie: false,
      pinned: false,
    });
  });
});

describe("stickyCookieHash reads only its own, well-formed cookie", () => {
  test.each([
    [`hashd-prod=${V1}`, V1],
    [`a=b; hashd-prod=${V1}; c=d`, V1],
    [`hashd-prod= ${V1} `, V1],
    [`xhashd-prod=${V2}; hashd-prod=${V1}`, V1], // a look-alike name is not the cookie
    [`hashd-prod=nothash; hashd-prod=${V1}`, V1],
    [`hashd-production=${V1}`, undefined],
    [`hashd-prod=${V1.slice(1)}`, undefined],
    [`hashd-api=${V1}`, undefined],
    ["", undefined],
  ])("%p -> %p", (cookies, expected) => {
    expect(stickyCookieHash(cookies, "prod")).toBe(expected as string | undefined);
  });

  test("a header of thousands of look-alike pairs is read in bounded time", () => {
    const hostile = `${"hashd-prod=x; ".repeat(5000)}hashd-prod=${V1}`;
    const started = performance.now();
    expect(stickyCookieHash(hostile, "prod")).toBeUndefined(); // only the first 32 pairs are looked at
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("the Set-Cookie line", () => {
    expect(stickyCookieLine("prod", V1, 3600, false)).toBe(
      `set-cookie: hashd-prod=${V1}; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax\r\n`,
    );
    expect(stickyCookieLine("prod", V1, 60, true)).toEndWith("; Secure\r\n");
  });
});

describe("stickyFor", () => {
  test("on unless max age 0, turned off for the alias, or the alias is named bypass", () => {
    const config = { maxAgeSec: 60, disabled: new Set(["api"]) };
    expect(stickyFor(config, "prod")).toBe(true);
    expect(stickyFor(config, "api")).toBe(false);
    expect(stickyFor(config, "bypass")).toBe(false); // hashd-bypass is the preview token's cookie
    expect(stickyFor({ ...config, maxAgeSec: 0 }, "prod")).toBe(false);
  });
});

describe("StickyUse", () => {
  test("a use keeps the hash until the cookie's max age, rounded up to 10 s, then forgets it", () => {
    const use = new StickyUse();
    use.note(V1, 1_000, 30);
    expect(use.untilOf(V1, 1_000)).toBe(40_000);
    expect(use.untilOf(V1, 39_999)).toBe(40_000);
    expect(use.untilOf(V1, 40_000)).toBeUndefined();
    expect(use.untilOf(V2, 0)).toBeUndefined();
  });

  test("bounded: past its size, new hashes are not tracked (known ones still are)", () => {
    const use = new StickyUse(2);
    use.note(V1, 0, 60);
    use.note(V2, 0, 60);
    use.note(PREVIEW, 0, 60);
    expect(use.untilOf(PREVIEW, 0)).toBeUndefined();
    use.note(V1, 100_000, 60);
    expect(use.untilOf(V1, 100_000)).toBe(160_000);
  });
});
