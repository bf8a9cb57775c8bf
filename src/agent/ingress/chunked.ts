import { HttpParseError, isTokenByte } from "./http1-head.ts";

enum State {
  Size,
  /** after `;`: a token must follow */
  ExtensionName,
  /** inside a name; `=`, `;` or CR may follow */
  ExtensionNameRest,
  /** after `=`: a token must follow */
  ExtensionValue,
  /** inside a value; `;` or CR may follow */
  ExtensionValueRest,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerName,
  TrailerValue,
  TrailerLf,
  FinalLf,
  Done,
}

/** Chunk extensions and trailers are passed on, but not without bound. */
const MAX_LINE = 16 * 1024;
/** 2^48 bytes: no real chunk is larger, and it keeps the arithmetic exact. */
const MAX_CHUNK = 2 ** 48;

/**
 * Finds where a chunked body ends (RFC 9112 7.1) without decoding it: the ingress passes the bytes
 * on as they are and only needs to know where the next message starts. Chunk data is skipped in
 * one step, so a large body costs one comparison per read, not per byte.
 *
 * Because the bytes are passed on, every line around the data must read the same to any parser:
 * a chunk size is hex digits followed at once by `;` or CRLF (no whitespace, which parsers treat
 * differently); extensions are `;name` or `;name=value` with tokens only (no whitespace, no quoted
 * strings: Bun's own server refuses `;a="b c"`, and nothing sends extensions in practice); a trailer
 * is `name:value` with a token name, a value of SP, HTAB, visible ASCII and obs-text, and no
 * obs-fold. Anything else is refused, never passed on.
 */
export class ChunkedScanner {
  private state = State.Size;
  private size = 0;
  private digits = 0;
  private lineBytes = 0;
  /** the current trailer's name, lower-cased, up to 32 characters (enough to compare) */
  private trailerName = "";
  /** data bytes seen so far (for body-size limits) */
  dataBytes = 0;

  get done(): boolean {
    return this.state === State.Done;
  }

  /** Scans buf[start, end); returns the index just past the body's last byte, or -1 if it goes on. */
  feed(buf: Uint8Array, start = 0, end = buf.length, errorStatus: 400 | 502 = 400): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case State.Data: {
          const take = Math.min(this.size, end - i);
          this.size -= take;
          i += take;
          if (this.size === 0) this.state = State.DataCr;
          continue;
        }
        case State.Size: {
          const c = buf[i] as number;
          const digit = hexValue(c);
          if (digit >= 0) {
            this.size = this.size * 16 + digit;
            if (++this.digits > 12 || this.size > MAX_CHUNK)
              throw new HttpParseError(errorStatus, "chunk too large");
          } else if (this.digits > 0 && c === 59 /* ; */) {
            this.state = State.ExtensionName;
            this.lineBytes = 0;
          } else if (this.digits > 0 && c === 13) this.state = State.SizeLf;
          else throw new HttpParseError(errorStatus, "malformed chunk size");
          break;
        }
        case State.ExtensionName:
        case State.ExtensionValue:
        case State.ExtensionNameRest:
        case State.ExtensionValueRest: {
          const c = buf[i] as number;
          if (++this.lineBytes > MAX_LINE) throw new HttpParseError(errorStatus, "chunk extension too long");
          this.state = nextExtensionState(this.state, c, errorStatus);
          break;
        }
        case State.SizeLf:
          if (buf[i] !== 10) throw new HttpParseError(errorStatus, "malformed chunk size line");
          this.dataBytes += this.size;
          this.state = this.size === 0 ? State.TrailerStart : State.Data;
          this.digits = 0;
          if (this.size === 0) this.lineBytes = 0;
          break;
        case State.DataCr:
          if (buf[i] !== 13) throw new HttpParseError(errorStatus, "chunk data longer than its size");
          this.state = State.DataLf;
          break;
        case State.DataLf:
          if (buf[i] !== 10) throw new HttpParseError(errorStatus, "chunk data longer than its size");
          this.state = State.Size;
          break;
        case State.TrailerStart: {
          // a trailer line starts with its name: SP or HTAB here would be obs-fold
          const c = buf[i] as number;
          if (c === 13) this.state = State.FinalLf;
          else if (isTokenByte(c)) {
            this.state = State.TrailerName;
            this.trailerName = String.fromCharCode(c | 32);
          } else throw new HttpParseError(errorStatus, "malformed trailer");
          if (++this.lineBytes > MAX_LINE) throw new HttpParseError(errorStatus, "trailer section too large");
          break;
        }
        case State.TrailerName: {
          const c = buf[i] as number;
          if (c === 58 /* : */) {
            // RFC 9110 6.5.1: framing and routing fields are not allowed in trailers
            if (FORBIDDEN_TRAILERS.has(this.trailerName))
              throw new HttpParseError(errorStatus, `${this.trailerName} is not allowed in trailers`);
            this.state = State.TrailerValue;
          } else if (!isTokenByte(c)) throw new HttpParseError(errorStatus, "malformed trailer name");
          else if (this.trailerName.length < 32) this.trailerName += String.fromCharCode(c | 32);
          if (++this.lineBytes > MAX_LINE) throw new HttpParseError(errorStatus, "trailer section too large");
          break;
        }
        case State.TrailerValue: {
          const c = buf[i] as number;
          if (c === 13) this.state = State.TrailerLf;
          else if (!isFieldByte(c) || ++this.lineBytes > MAX_LINE)
            throw new HttpParseError(errorStatus, "malformed trailer");
          break;
        }
        case State.TrailerLf:
          if (buf[i] !== 10) throw new HttpParseError(errorStatus, "malformed trailer");
          this.state = State.TrailerStart;
          break;
        case State.FinalLf:
          if (buf[i] !== 10) throw new HttpParseError(errorStatus, "malformed end of chunked body");
          this.state = State.Done;
          return i + 1;
        case State.Done:
          return i;
      }
      i++;
    }
    return -1;
  }
}

/** Trailer fields that would change how the message is framed or routed if a recipient merged them. */
const FORBIDDEN_TRAILERS = new Set(["content-length", "transfer-encoding", "host"]);

/** `;name[=value]` repeated, tokens only: the next state after byte c, or a 400/502. */
function nextExtensionState(state: State, c: number, errorStatus: 400 | 502): State {
  const token = isTokenByte(c);
  switch (state) {
    case State.ExtensionName:
    case State.ExtensionValue:
      if (token) return state === State.ExtensionName ? State.ExtensionNameRest : State.ExtensionValueRest;
      break;
    case State.ExtensionNameRest:
      if (token) return state;
      if (c === 61 /* = */) return State.ExtensionValue;
      if (c === 59 /* ; */) return State.ExtensionName;
      if (c === 13) return State.SizeLf;
      break;
    case State.ExtensionValueRest:
      if (token) return state;
      if (c === 59 /* ; */) return State.ExtensionName;
      if (c === 13) return State.SizeLf;
      break;
  }
  throw new HttpParseError(errorStatus, "malformed chunk extension");
}

/** SP, HTAB, visible ASCII and obs-text: what a field value or chunk extension may hold */
function isFieldByte(c: number): boolean {
  return c === 9 || (c >= 32 && c !== 127);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 32;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}
