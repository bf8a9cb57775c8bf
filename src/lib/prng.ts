/**
 * Randomness as an input. The core never calls Math.random: it draws from an `Rng` it was given,
 * so the simulator replays a run exactly from one seed and the adapter can use the OS source.
 */
export interface Rng {
  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number;
}

/** Uniform float in [0, 1) from 32 random bits. */
export const randomFloat = (rng: Rng): number => rng.nextU32() / 4294967296;

/** Uniform integer in [0, n) (n <= 2^32). The tiny modulo bias of a 32-bit draw is irrelevant here. */
export const randomInt = (rng: Rng, n: number): number => (n <= 1 ? 0 : Math.floor(randomFloat(rng) * n));

/** Uniform integer in [lo, hi] (inclusive). */
export const randomBetween = (rng: Rng, lo: number, hi: number): number => lo + randomInt(rng, hi - lo + 1);

/** Fisher-Yates shuffle in place. */
export const shuffle = <T>(rng: Rng, items: T[]): T[] => {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const t = items[i] as T;
    items[i] = items[j] as T;
    items[j] = t;
  }
  return items;
};

/**
 * SplitMix32 step, used only to expand a seed into xoshiro's 128-bit state (a seed of 0 must not
 * give the all-zero state, which xoshiro can never leave).
 */
const splitmix32 = (state: { s: number }): number => {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
};

/**
 * xoshiro128** 1.1 (Blackman and Vigna, https://prng.di.unimi.it/xoshiro128starstar.c): 128 bits
 * of state, period 2^128 - 1, passes BigCrush; not cryptographic. Same seed, same sequence, on
 * every platform (only 32-bit integer operations).
 */
export class Xoshiro128 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    const st = { s: seed >>> 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
  }

  /** A generator with an explicit 128-bit state (not all zero); for reference vectors. */
  static fromState(a: number, b: number, c: number, d: number): Xoshiro128 {
    const x = new Xoshiro128(0);
    x.a = a | 0;
    x.b = b | 0;
    x.c = c | 0;
    x.d = d | 0;
    return x;
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** An independent generator for a sub-component (one per simulated node), derived from this one. */
  fork(): Xoshiro128 {
    return new Xoshiro128(this.nextU32() ^ Math.imul(this.nextU32(), 0x9e3779b9));
  }
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/**
 * Operating-system randomness for production (Web Crypto's getRandomValues, drawn in blocks so
 * the per-call cost stays low). Not a key source: keys come from the key file.
 */
export class SystemRng implements Rng {
  private readonly buf = new Uint32Array(256);
  private pos = 256;

  nextU32(): number {
    if (this.pos >= this.buf.length) {
      crypto.getRandomValues(this.buf);
      this.pos = 0;
    }
    return this.buf[this.pos++] as number;
  }
}
