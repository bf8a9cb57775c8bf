/**
 * Sealing gossip with AES-256-GCM and a keyring, as Serf and memberlist do (memberlist
 * security.go, Serf keyring): the primary key seals, every key opens, so keys can be rotated by
 * adding the new key everywhere, making it primary everywhere, then removing the old one.
 *
 * Wire format (memberlist encryption version 1, no padding):
 *
 *   [version = 1][12-byte random nonce][ciphertext][16-byte GCM tag]
 *
 * The associated data is a label naming the channel ("hashd-gossip/udp" or ".../tcp" by the
 * adapter), so a sealed UDP packet cannot be replayed as a stream frame or the reverse.
 *
 * GCM gives confidentiality and authenticity, not freshness: a captured packet opens again.
 * Replays are handled by the core (versioned state, outstanding sequence numbers; see probe.ts
 * and state-sync.ts). This is the only file that touches node:crypto.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

export const SEAL_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** Bytes sealing adds to a plaintext. */
export const SEAL_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;

export class KeyringError extends Error {
  override readonly name = "KeyringError";
}

export interface KeyringStats {
  sealed: number;
  opened: number;
  /** Inputs dropped because no key opened them (wrong key, forged, truncated, tampered). */
  openFailures: number;
}

export class Keyring {
  readonly stats: KeyringStats = { sealed: 0, opened: 0, openFailures: 0 };
  private readonly keys: Buffer[];

  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new KeyringError("a keyring needs at least one key");
    const seen = new Set<string>();
    this.keys = [];
    for (const k of keys) {
      if (k.length !== KEY_BYTES) throw new KeyringError(`a key must be ${KEY_BYTES} bytes, got ${k.length}`);
      const hex = Buffer.from(k).toString("hex");
      if (seen.has(hex)) continue;
      seen.add(hex);
      this.keys.push(Buffer.from(k));
    }
  }

  /** Key file: one base64 32-byte key per line, the first is the primary; blank lines and # comments ignored. */
  static parse(text: string): Keyring {
    const keys: Uint8Array[] = [];
    text.split("\n").forEach((line, i) => {
      const s = line.trim();
      if (s === "" || s.startsWith("#")) return;
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) throw new KeyringError(`key file line ${i + 1}: not base64`);
      const key = Buffer.from(s, "base64");
      if (key.length !== KEY_BYTES) {
        throw new KeyringError(
          `key file line ${i + 1}: a key must decode to ${KEY_BYTES} bytes, got ${key.length}`,
        );
      }
      keys.push(key);
    });
    if (keys.length === 0) throw new KeyringError("key file holds no key");
    return new Keyring(keys);
  }

  static async load(path: string): Promise<Keyring> {
    return Keyring.parse(await Bun.file(path).text());
  }

  /** A fresh random key, base64, as one line of a key file. */
  static generateKey(): string {
    return randomBytes(KEY_BYTES).toString("base64");
  }

  get size(): number {
    return this.keys.length;
  }

  /**
   * One subkey per cluster key (HKDF-SHA256 under `info`), in the same order: for other uses of the
   * cluster key (the ingress's hop proofs), so that no key ever serves two purposes.
   */
  derive(info: string): Buffer[] {
    return this.keys.map((key) => Buffer.from(hkdfSync("sha256", key, new Uint8Array(0), info, KEY_BYTES)));
  }

  seal(plaintext: Uint8Array, label: string): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.keys[0] as Buffer, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(label));
    const body = cipher.update(plaintext);
    const rest = cipher.final();
    const tag = cipher.getAuthTag();
    const out = new Uint8Array(1 + NONCE_BYTES + body.length + rest.length + TAG_BYTES);
    out[0] = SEAL_VERSION;
    out.set(nonce, 1);
    out.set(body, 1 + NONCE_BYTES);
    out.set(rest, 1 + NONCE_BYTES + body.length);
    out.set(tag, out.length - TAG_BYTES);
    this.stats.sealed++;
    return out;
  }

  /** The plaintext, or null (counted in stats.openFailures) if no key authenticates it. */
  open(sealed: Uint8Array, label: string): Uint8Array | null {
    if (sealed.length < SEAL_OVERHEAD || sealed[0] !== SEAL_VERSION) {
      this.stats.openFailures++;
      return null;
    }
    const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
    const body = sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const aad = Buffer.from(label);
    for (const key of this.keys) {
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad);
        decipher.setAuthTag(tag);
        const head = decipher.update(body);
        const tail = decipher.final();
        this.stats.opened++;
        return tail.length === 0 ? new Uint8Array(head) : new Uint8Array(Buffer.concat([head, tail]));
      } catch {
        // wrong key or tampered: try the next key
      }
    }
    this.stats.openFailures++;
    return null;
  }
}
