/**
 * Finds where each message of a packet starts and ends without decoding it, so the core can skip
 * a broadcast it has already processed (seen-cache.ts) before paying for a decode. Understands
 * exactly the msgpack subset the protocol uses (nil, booleans, integers, floats, strings, binary,
 * arrays) and refuses maps and extension types, like the decoder does. Iterative, so nesting
 * depth costs no stack.
 */

/** End offset of the value starting at `pos`, or -1 if it is malformed, refused or truncated. */
export const skipValue = (b: Uint8Array, pos: number): number => {
  let remaining = 1;
  let p = pos;
  const n = b.length;
  while (remaining > 0) {
    if (p >= n) return -1;
    const h = b[p] as number;
    remaining--;
    p++;
    if (h <= 0x7f || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) continue; // fixint, nil, bool
    if (h >= 0x90 && h <= 0x9f) {
      remaining += h & 0x0f;
      continue;
    }
    if (h >= 0xa0 && h <= 0xbf) {
      p += h & 0x1f;
      continue;
    }
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
        if (p + 1 > n) return -1;
        p += 1 + (b[p] as number);
        break;
      case 0xc5:
      case 0xda:
        if (p + 2 > n) return -1;
        p += 2 + (((b[p] as number) << 8) | (b[p + 1] as number));
        break;
      case 0xdc:
        if (p + 2 > n) return -1;
        remaining += ((b[p] as number) << 8) | (b[p + 1] as number);
        p += 2;
        break;
      default:
        return -1; // maps, 32-bit lengths (never in a packet), extensions, 0xc1
    }
  }
  return p <= n ? p : -1;
};

/**
 * Where the messages of a packet (a msgpack array of messages) lie: offsets o[0..count], message
 * i spans [o[i], o[i+1]). Null if the packet is not exactly one well-formed array.
 */
export const splitArray = (b: Uint8Array, maxItems: number): number[] | null => {
  if (b.length === 0) return null;
  const h = b[0] as number;
  let count: number;
  let p: number;
  if (h >= 0x90 && h <= 0x9f) {
    count = h & 0x0f;
    p = 1;
  } else if (h === 0xdc && b.length >= 3) {
    count = ((b[1] as number) << 8) | (b[2] as number);
    p = 3;
  } else {
    return null;
  }
  if (count === 0 || count > maxItems) return null;
  const out: number[] = [p];
  for (let i = 0; i < count; i++) {
    p = skipValue(b, p);
    if (p < 0) return null;
    out.push(p);
  }
  return p === b.length ? out : null;
};
