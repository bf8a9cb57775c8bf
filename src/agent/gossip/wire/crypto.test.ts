import { describe, expect, test } from "bun:test";
import { Keyring, KeyringError, SEAL_OVERHEAD, SEAL_VERSION } from "./crypto.ts";

const text = (s: string) => new TextEncoder().encode(s);

describe("Keyring", () => {
  test("seal then open, with the memberlist layout: version, 12-byte nonce, ciphertext, 16-byte tag", () => {
    const k = Keyring.parse(Keyring.generateKey());
    const sealed = k.seal(text("hello gossip"), "hashd-gossip/udp");
    expect(sealed[0]).toBe(SEAL_VERSION);
    expect(sealed.length).toBe(text("hello gossip").length + SEAL_OVERHEAD);
    expect(SEAL_OVERHEAD).toBe(29);
    expect(new TextDecoder().decode(k.open(sealed, "hashd-gossip/udp") as Uint8Array)).toBe("hello gossip");
    expect(k.stats).toEqual({ sealed: 1, opened: 1, openFailures: 0 });
  });

  test("nonces are fresh: the same plaintext seals differently", () => {
    const k = Keyring.parse(Keyring.generateKey());
    const a = k.seal(text("x"), "l");
    const b = k.seal(text("x"), "l");
    expect(Buffer.from(a.subarray(1, 13)).equals(Buffer.from(b.subarray(1, 13)))).toBe(false);
  });

  test("wrong key, wrong label, tampering and truncation are dropped and counted", () => {
    const k = Keyring.parse(Keyring.generateKey());
    const other = Keyring.parse(Keyring.generateKey());
    const sealed = k.seal(text("payload"), "udp");
    expect(other.open(sealed, "udp")).toBeNull();
    expect(k.open(sealed, "tcp")).toBeNull(); // a UDP packet is not a stream frame
    for (let i = 0; i < sealed.length; i++) {
      const t = sealed.slice();
      t[i] = (t[i] as number) ^ 0x01;
      expect(k.open(t, "udp")).toBeNull();
    }
    for (let n = 0; n < sealed.length; n++) expect(k.open(sealed.subarray(0, n), "udp")).toBeNull();
    expect(k.open(new Uint8Array(0), "udp")).toBeNull();
    expect(k.stats.openFailures).toBe(1 + 2 * sealed.length + 1);
    expect(other.stats.openFailures).toBe(1);
  });

  test("rotation: every key opens, only the primary seals", () => {
    const oldKey = Keyring.generateKey();
    const newKey = Keyring.generateKey();
    const oldRing = Keyring.parse(oldKey);
    const both = Keyring.parse(`${newKey}\n${oldKey}\n`);
    const newRing = Keyring.parse(newKey);
    expect(both.open(oldRing.seal(text("a"), "l"), "l")).not.toBeNull();
    const fromBoth = both.seal(text("b"), "l");
    expect(newRing.open(fromBoth, "l")).not.toBeNull();
    expect(oldRing.open(fromBoth, "l")).toBeNull();
  });

  test("key file: comments and blank lines ignored, duplicates folded, errors name the line", () => {
    const key = Keyring.generateKey();
    expect(Keyring.parse(`# cluster key\n\n${key}\n${key}\n`).size).toBe(1);
    expect(() => Keyring.parse("")).toThrow(KeyringError);
    expect(() => Keyring.parse(`${key}\nnot base64!\n`)).toThrow("line 2: not base64");
    expect(() => Keyring.parse(Buffer.alloc(16).toString("base64"))).toThrow("32 bytes, got 16");
    expect(() => new Keyring([])).toThrow(KeyringError);
  });

  test("load reads a key file", async () => {
    const path = `/tmp/hashd-gossip-keyring-${process.pid}.key`;
    await Bun.write(path, `${Keyring.generateKey()}\n`);
    try {
      expect((await Keyring.load(path)).size).toBe(1);
    } finally {
      await Bun.file(path).delete();
    }
  });
});
