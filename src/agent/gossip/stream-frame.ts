/**
 * Stream framing for push-pull over TCP: one frame each way, a 4-byte big-endian length then
 * that many bytes (a sealed message). The reader refuses a length above its bound before
 * buffering anything, so a peer cannot make us allocate more than one frame's worth.
 */
export const FRAME_HEADER_BYTES = 4;

export const frame = (payload: Uint8Array): Uint8Array => {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
};

export type FrameResult =
  | { kind: "more" }
  | { kind: "frame"; payload: Uint8Array }
  | { kind: "error"; reason: string };

export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private expected = -1;
  private done = false;

  constructor(private readonly maxBytes: number) {}

  /** Feed received bytes; returns the frame once complete. Bytes after the frame are an error. */
  push(chunk: Uint8Array): FrameResult {
    if (this.done) return { kind: "error", reason: "data after the frame" };
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.expected < 0) {
      if (this.buffered < FRAME_HEADER_BYTES) return { kind: "more" };
      const all = this.flatten();
      this.expected = new DataView(all.buffer, all.byteOffset, all.byteLength).getUint32(0);
      if (this.expected > this.maxBytes)
        return { kind: "error", reason: `frame of ${this.expected} bytes exceeds ${this.maxBytes}` };
    }
    const total = FRAME_HEADER_BYTES + this.expected;
    if (this.buffered < total) return { kind: "more" };
    if (this.buffered > total) return { kind: "error", reason: "data after the frame" };
    this.done = true;
    return { kind: "frame", payload: this.flatten().subarray(FRAME_HEADER_BYTES) };
  }

  private flatten(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0] as Uint8Array;
    const all = new Uint8Array(this.buffered);
    let pos = 0;
    for (const c of this.chunks) {
      all.set(c, pos);
      pos += c.length;
    }
    this.chunks = [all];
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
