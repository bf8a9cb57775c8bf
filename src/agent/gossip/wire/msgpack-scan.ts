/**
 * The one gate every gossip plaintext passes before it is decoded (UDP packets, stream requests,
 * stream replies): a walk over the msgpack bytes that allocates nothing and checks, before the
 * decoder gets to allocate anything, that
 *
 * - every declared array length fits in the bytes that remain (each item takes at least one byte)
 *   and under `maxArray`; every string or binary length fits in the bytes that remain and under
 *   `maxStr`: a header cannot make the decoder allocate for items that are not there;
 * - arrays nest at most `maxDepth` deep (the protocol needs 7: see messages.ts);
 * - the value holds at most `maxObjects` arrays, strings and binaries (each becomes one object when
 *   decoded): this bounds what a message costs in memory by its size, at about the density of
 *   real traffic (codec.ts scanLimits);
 * - it is made only of the types the protocol uses (nil, booleans, integers, floats, strings,
 *   binaries, arrays): maps and extension types are refused, as the decoder refuses them.
 *
 * It also finds where each message of a packet starts and ends without decoding it, so the core
 * can skip a broadcast it has already processed (seen-cache.ts) before paying for a decode.
 * Iterative, so nesting costs no stack.
 */

export interface ScanLimits {
  /** Deepest nesting of arrays: 1 = an array of scalars. At most MAX_SCAN_DEPTH. */
  maxDepth: number;
  /** Items in one array. */
  maxArray: number;
  /** Bytes of one string or binary. */
  maxStr: number;
  /** Arrays, strings and binaries in the whole value. */
  maxObjects: number;
}

export const MAX_SCAN_DEPTH = 32;

// Items still to read at each nesting level (reused: the scan allocates nothing).
const pending = new Float64Array(MAX_SCAN_DEPTH + 1);

const u16 = (b: Uint8Array, p: number): number => ((b[p] as number) << 8) | (b[p + 1] as number);
const u32 = (b: Uint8Array, p: number): number =>
  (b[p] as number) * 0x1000000 +
  (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));

/**
 * End offset of the value starting at `pos` (and ending by `end`), or -1 if it is malformed,
 * truncated, of a refused type, or beyond `limits`.
 */
export const skipValue = (b: Uint8Array, pos: number, limits: ScanLimits, end: number = b.length): number => {
  const maxDepth = Math.min(limits.maxDepth, MAX_SCAN_DEPTH);
  let depth = 0;
  pending[0] = 1;
  let objects = 0;
  let p = pos;
  for (;;) {
    while (pending[depth] === 0) {
      if (depth === 0) return p;
      depth--;
    }
    if (p >= end) return -1;
    (pending[depth] as number)--;
    const h = b[p++] as number;
    if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) continue; // fixint, nil, bool
    let count = -1; // array items
    let len = -1; // string or binary bytes
    if (h >= 0x90 && h <= 0x9f) count = h & 0x0f;
    else if (h >= 0xa0 && h <= 0xbf) len = h & 0x1f;
    else {
      switch (h) {
        case 0xcc:
        case 0xd0:
          p += 1;
          break;
        case 0xcd:
        case 0xd1:
          p += 2;
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          p += 4;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          p += 8;
          break;
        case 0xc4:
        case 0xd9:
          if (p + 1 > end) return -1;
          len = b[p] as number;
          p += 1;
          break;
        case 0xc5:
        case 0xda:
          if (p + 2 > end) return -1;
          len = u16(b, p);
          p += 2;
          break;
        case 0xc6:
        case 0xdb:
          if (p + 4 > end) return -1;
          len = u32(b, p);
          p += 4;
          break;
        case 0xdc:
          if (p + 2 > end) return -1;
          count = u16(b, p);
          p += 2;
          break;
        case 0xdd:
          if (p + 4 > end) return -1;
          count = u32(b, p);
          p += 4;
          break;
        default:
          return -1; // maps, extensions, 0xc1
      }
      if (p > end) return -1;
    }
    if (len >= 0) {
      if (len > limits.maxStr || len > end - p || ++objects > limits.maxObjects) return -1;
      p += len;
    } else if (count >= 0) {
      if (count > limits.maxArray || count > end - p || ++objects > limits.maxObjects) return -1;
      if (depth + 1 > maxDepth) return -1;
      if (count > 0) pending[++depth] = count;
    }
  }
};

/**
 * Where the messages of a packet (a msgpack array of messages) lie: offsets o[0..count], message
 * i spans [o[i], o[i+1]). Null if the packet is not exactly one well-formed array of at most
 * `maxItems` messages, each within `limits`.
 */
export const splitArray = (b: Uint8Array, maxItems: number, limits: ScanLimits): number[] | null => {
  if (b.length === 0) return null;
  const h = b[0] as number;
  let count: number;
  let p: number;
  if (h >= 0x90 && h <= 0x9f) {
    count = h & 0x0f;
    p = 1;
  } else if (h === 0xdc && b.length >= 3) {
    count = u16(b, 1);
    p = 3;
  } else {
    return null;
  }
  if (count === 0 || count > maxItems || count > b.length - p) return null;
  const out: number[] = [p];
  for (let i = 0; i < count; i++) {
    p = skipValue(b, p, limits);
    if (p < 0) return null;
    out.push(p);
  }
  return p === b.length ? out : null;
};
