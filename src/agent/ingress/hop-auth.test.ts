import { describe, expect, test } from "bun:test";
import { Keyring } from "../gossip/wire/crypto.ts";
import { HOP_KEY_INFO, HopAuth, type HopFields, MAX_SKEW_SEC } from "./hop-auth.ts";

const fields: HopFields = {
  member: "web1",
  hash: "0123456789abcdfghijklmnpqrsvwxyz",
  method: "GET",
  target: "/a?b",
  forwardedFor: "203.0.113.9",
  forwardedHost: "app.example.com",
  forwardedProto: "http",
};
const now = 1_800_000_000_000;
const keyA = new Uint8Array(32).fill(1);
const keyB = new Uint8Array(32).fill(2);

describe("HopAuth", () => {
  test("a proof verifies under the same key, within the clock window", () => {
    const auth = new HopAuth([keyA]);
    const proof = auth.sign(fields, now);
    expect(proof).toMatch(/^\d+\.[A-Za-z0-9_-]{43}$/);
    expect(auth.verify(proof, fields, now)).toBe(true);
    expect(auth.verify(proof, fields, now + MAX_SKEW_SEC * 1000)).toBe(true);
    expect(auth.verify(proof, fields, now + (MAX_SKEW_SEC + 2) * 1000)).toBe(false);
    expect(auth.verify(proof, fields, now - (MAX_SKEW_SEC + 2) * 1000)).toBe(false);
  });

  test("every signed field is bound: changing any one fails", () => {
    const auth = new HopAuth([keyA]);
    const proof = auth.sign(fields, now);
    for (const key of Object.keys(fields) as (keyof HopFields)[]) {
      expect(auth.verify(proof, { ...fields, [key]: `${fields[key]}x` }, now)).toBe(false);
    }
  });

  test("another key fails; during a rotation both the old and the new key verify", () => {
    expect(new HopAuth([keyB]).verify(new HopAuth([keyA]).sign(fields, now), fields, now)).toBe(false);
    const rotating = new HopAuth([keyB, keyA]);
    expect(rotating.verify(new HopAuth([keyA]).sign(fields, now), fields, now)).toBe(true);
    expect(new HopAuth([keyA, keyB]).verify(rotating.sign(fields, now), fields, now)).toBe(true);
  });

  test("malformed proofs are refused without throwing", () => {
    const auth = new HopAuth([keyA]);
    const good = auth.sign(fields, now);
    const seconds = good.slice(0, good.indexOf("."));
    for (const proof of [
      undefined,
      "",
      ".",
      `${seconds}.`,
      `.${good.slice(good.indexOf(".") + 1)}`,
      `${seconds}.AAAA`,
      `-1.${good.slice(good.indexOf(".") + 1)}`,
      `${seconds}x.${good.slice(good.indexOf(".") + 1)}`,
      `${good}A`,
      "9".repeat(5000),
    ]) {
      expect(auth.verify(proof, fields, now)).toBe(false);
    }
  });

  test("hop keys derive from the cluster keyring and differ from the gossip key", () => {
    const keyring = new Keyring([keyA, keyB]);
    const derived = keyring.derive(HOP_KEY_INFO);
    expect(derived).toHaveLength(2);
    expect(Buffer.from(derived[0] as Buffer).equals(Buffer.from(keyA))).toBe(false);
    expect(new Keyring([keyA]).derive(HOP_KEY_INFO)[0]).toEqual(derived[0] as Buffer);
    expect(HopAuth.create([])).toBeUndefined();
  });
});
