/**
 * Stream framing (TCP, on the gossip port): one frame each way, the request then the reply. A
 * frame is a sealed header, then the sealed message:
 *
 *   [sealed header: 34 bytes = 29 of sealing + plaintext [kind: 1 request | 2 reply][length: u32 BE]]
 *   [sealed body: `length` bytes]
 *
 * The header is sealed on its own (label "<label>/tcp-head"), so the reader authenticates it
 * before it accepts a byte of the body: a peer without the key can make us hold 34 bytes, no more,
 * and the length it declares is checked against the bound only once it is known to come from a
 * key holder. The kind keeps a reply from being replayed as a request (and the reverse).
 */
import { type Keyring, SEAL_OVERHEAD } from "./crypto.ts";

export const HEADER_PLAIN_BYTES = 5;
export const SEALED_HEADER_BYTES = SEAL_OVERHEAD + HEADER_PLAIN_BYTES;

export const FRAME_REQUEST = 1;
export const FRAME_REPLY = 2;
export type FrameKind = typeof FRAME_REQUEST | typeof FRAME_REPLY;

/** Sealing of frames; the adapter builds it from the keyring (keyringFrameSeal). */
export interface FrameSeal {
  /** A whole frame for a plaintext message: sealed header, then sealed body. */
  frame(kind: FrameKind, message: Uint8Array): Uint8Array;
  /** The kind and body length a sealed header carries, or null if no key opens it. */
  openHeader(header: Uint8Array): { kind: number; length: number } | null;
  /** The plaintext of a sealed body, or null if no key opens it. */
  openBody(body: Uint8Array): Uint8Array | null;
}

export const keyringFrameSeal = (keyring: Keyring, label: string): FrameSeal => {
  const headLabel = `${label}-head`;
  return {
    frame: (kind, message) => {
      const body = keyring.seal(message, label);
      const plain = new Uint8Array(HEADER_PLAIN_BYTES);
      plain[0] = kind;
      new DataView(plain.buffer).setUint32(1, body.length);
      const head = keyring.seal(plain, headLabel);
      const out = new Uint8Array(head.length + body.length);
      out.set(head, 0);
      out.set(body, head.length);
      return out;
    },
    openHeader: (header) => {
      const plain = keyring.open(header, headLabel);
      if (plain === null || plain.length !== HEADER_PLAIN_BYTES) return null;
      return { kind: plain[0] as number, length: new DataView(plain.buffer, plain.byteOffset).getUint32(1) };
    },
    openBody: (body) => keyring.open(body, label),
  };
};

export type FrameResult =
  | { kind: "more" }
  | { kind: "frame"; body: Uint8Array }
  | { kind: "error"; reason: string; authenticated: boolean };

/**
 * Reads one frame of `kind` whose sealed body is at most `maxBody` bytes. Holds at most the
 * header's 34 bytes until the header opens; then the body as it arrives.
 */
export class FrameReader {
  private readonly head = new Uint8Array(SEALED_HEADER_BYTES);
  private headBytes = 0;
  private chunks: Uint8Array[] = [];
  private received = 0;
  /** Body length, once the header is authenticated; -1 before. */
  length = -1;
  private done = false;

  constructor(
    private readonly seal: FrameSeal,
    private readonly kind: FrameKind,
    private readonly maxBody: number,
  ) {}

  /** Bytes this reader holds (none once it has handed over its frame or failed). */
  get buffered(): number {
    return this.done ? 0 : this.headBytes + this.received;
  }

  /** Feed received bytes; returns the sealed body once complete. Bytes after the frame are an error. */
  push(chunk: Uint8Array): FrameResult {
    if (this.done) return { kind: "error", reason: "data after the frame", authenticated: true };
    let rest = chunk;
    if (this.length < 0) {
      const take = Math.min(SEALED_HEADER_BYTES - this.headBytes, rest.length);
      this.head.set(rest.subarray(0, take), this.headBytes);
      this.headBytes += take;
      rest = rest.subarray(take);
      if (this.headBytes < SEALED_HEADER_BYTES) return { kind: "more" };
      const h = this.seal.openHeader(this.head);
      if (h === null) return this.fail("header not authentic", false);
      if (h.kind !== this.kind) return this.fail(`frame of kind ${h.kind}, expected ${this.kind}`, true);
      if (h.length > this.maxBody)
        return this.fail(`frame of ${h.length} bytes exceeds ${this.maxBody}`, true);
      this.length = h.length;
    }
    if (rest.length > 0) {
      if (this.received + rest.length > this.length) return this.fail("data after the frame", true);
      this.chunks.push(rest);
      this.received += rest.length;
    }
    if (this.received < this.length) return { kind: "more" };
    this.done = true;
    const body = this.flatten();
    this.chunks = [];
    return { kind: "frame", body };
  }

  private fail(reason: string, authenticated: boolean): FrameResult {
    this.done = true;
    this.chunks = [];
    this.received = 0;
    this.headBytes = 0;
    return { kind: "error", reason, authenticated };
  }

  private flatten(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0] as Uint8Array;
    const all = new Uint8Array(this.received);
    let pos = 0;
    for (const c of this.chunks) {
      all.set(c, pos);
      pos += c.length;
    }
    return all;
  }
}

/** Write all of `bytes` to a socket that may accept only part per call; `drain` resumes. */
export class PendingWrite {
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  /** Write what the socket takes now; true once everything is written. */
  flush(write: (b: Uint8Array) => number): boolean {
    while (this.offset < this.bytes.length) {
      const n = write(this.bytes.subarray(this.offset));
      if (n <= 0) return false;
      this.offset += n;
    }
    return true;
  }
}
