/**
 * Broadcasts already processed, remembered by a 64-bit fingerprint of their bytes. Gossip sends
 * each broadcast to each member about retransmitMult * log10(n) times; all copies are the same
 * bytes, so every copy after the first can be skipped before decoding. Only messages whose
 * effect is final are recorded (not, say, a state report for a member not known yet, which must
 * be looked at again when it comes back). A direct-mapped table: an eviction only costs one more
 * decode; a false match needs a 64-bit collision.
 */
export class SeenCache {
  private readonly h1: Uint32Array;
  private readonly h2: Uint32Array;
  private readonly mask: number;

  constructor(slots = 2048) {
    if ((slots & (slots - 1)) !== 0) throw new RangeError("slots must be a power of two");
    this.h1 = new Uint32Array(slots);
    this.h2 = new Uint32Array(slots);
    this.mask = slots - 1;
  }

  has(b: Uint8Array, start: number, end: number): boolean {
    const [a, c] = fingerprint(b, start, end);
    const slot = a & this.mask;
    return this.h1[slot] === a && this.h2[slot] === c && (a | c) !== 0;
  }

  add(b: Uint8Array, start: number, end: number): void {
    const [a, c] = fingerprint(b, start, end);
    const slot = a & this.mask;
    this.h1[slot] = a;
    this.h2[slot] = c;
  }
}

const out: [number, number] = [0, 0];

/** FNV-1a and a multiply-rotate hash over b[start, end), with the length mixed in. */
const fingerprint = (b: Uint8Array, start: number, end: number): [number, number] => {
  const len = end - start;
  let a = 0x811c9dc5 ^ len;
  let c = 0x9e3779b9 ^ Math.imul(len, 0x85ebca6b);
  for (let i = start; i < end; i++) {
    const x = b[i] as number;
    a = Math.imul(a ^ x, 0x01000193);
    c = Math.imul((c << 5) | (c >>> 27), 0x27d4eb2d) ^ x;
  }
  out[0] = a >>> 0;
  out[1] = c >>> 0;
  return out;
};
