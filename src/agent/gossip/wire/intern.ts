/**
 * String interning for the decoder. Packets repeat the same few thousand short strings (member
 * names, addresses, store hashes) over and over; decoding each occurrence into a fresh string,
 * and then hashing it again for every Map lookup, was over half the simulator's time at 1,000
 * members. A direct-mapped cache keyed by an FNV-1a hash of the bytes returns the same string
 * object for the same bytes (compared in full, so a collision only costs a miss).
 */
const SLOTS = 1 << 15;
const MAX_INTERNED = 64;
const slotBytes: (Uint8Array | undefined)[] = new Array(SLOTS);
const slotString: (string | undefined)[] = new Array(SLOTS);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The string these UTF-8 bytes encode, or null if they are not valid UTF-8. */
export const internUtf8 = (b: Uint8Array): string | null => {
  const n = b.length;
  if (n > MAX_INTERNED) return decode(b);
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
  const slot = (h >>> 0) & (SLOTS - 1);
  const cached = slotBytes[slot];
  if (cached !== undefined && cached.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (cached[i] !== b[i]) {
        same = false;
        break;
      }
    }
    if (same) return slotString[slot] as string;
  }
  const s = decode(b);
  if (s === null) return null;
  slotBytes[slot] = b.slice();
  slotString[slot] = s;
  return s;
};

const decode = (b: Uint8Array): string | null => {
  let ascii = true;
  for (let i = 0; i < b.length; i++) {
    if ((b[i] as number) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return String.fromCharCode.apply(null, b as unknown as number[]);
  try {
    return utf8.decode(b);
  } catch {
    return null;
  }
};

/**
 * Replace, in place, every byte string in a decoded msgpack tree by its interned string. False if
 * one is not valid UTF-8 (the message is then refused).
 */
export const internStrings = (v: unknown[]): boolean => {
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x instanceof Uint8Array) {
      const s = internUtf8(x);
      if (s === null) return false;
      v[i] = s;
    } else if (Array.isArray(x)) {
      if (!internStrings(x)) return false;
    }
  }
  return true;
};
