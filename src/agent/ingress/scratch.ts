declare module "buffer" {
  interface Buffer {
    /** Node's latin1 writer (in Node and Bun, absent from @types/node): 3x faster here than write(s, o, "latin1") */
    latin1Write(text: string, offset: number): number;
  }
}

const INITIAL_BYTES = 16 * 1024;
/** Shorter strings are copied by a loop: a native call costs more than the copy (0.19 against 0.34 µs for a head's 14 pieces). */
const SHORT_TEXT = 64;
/** After a build larger than this (a huge head), the buffer goes back to its first size. */
const KEEP_AT_MOST = 1024 * 1024;

/**
 * One reused buffer for the bytes the ingress builds on every request: the head sent to the service
 * and the response head with the x-hashd-hash line. Each is handed to a socket as soon as it is
 * built, and what a socket does not take at once is copied out (Outbox.sendCopy), so one buffer is
 * enough on the single event-loop thread. Built as strings and new Buffers, these two were about 850
 * of the 2,000 bytes the proxy's code allocated per request (bench/ingress/alloc.ts), and every
 * garbage collection they bring closer is a pause of 0.7-1 ms that the requests of that moment wait
 * out.
 *
 * Strings written here must hold no character above U+00FF: heads are decoded as latin1, and the
 * names and addresses the ingress adds are ASCII.
 */
export class Scratch {
  buf: Buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  length = 0;

  /** Starts a new build; the previous one's bytes are no longer needed. */
  reset(): this {
    if (this.buf.length > KEEP_AT_MOST) this.buf = Buffer.allocUnsafe(INITIAL_BYTES);
    this.length = 0;
    return this;
  }

  text(text: string): void {
    this.reserve(text.length);
    if (text.length > SHORT_TEXT) {
      this.length += this.buf.latin1Write(text, this.length);
      return;
    }
    const { buf } = this;
    let at = this.length;
    for (let i = 0; i < text.length; i++) buf[at++] = text.charCodeAt(i);
    this.length = at;
  }

  bytes(source: Buffer, from: number, to: number): void {
    this.reserve(to - from);
    this.length += source.copy(this.buf, this.length, from, to);
  }

  /** the bytes built so far, as text (for tests) */
  toString(): string {
    return this.buf.toString("latin1", 0, this.length);
  }

  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }
}

/** The ingress's one scratch buffer (a module value: the event loop runs one build at a time). */
export const scratch = new Scratch();
