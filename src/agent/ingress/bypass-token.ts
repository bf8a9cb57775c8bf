import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { HashdError } from "../../lib/errors.ts";

/**
 * The bypass token of private previews (access.ts): one secret per host (the same file on every
 * member, as the cluster key), kept in `access.bypassTokenFile`. It is URL-safe on purpose, so
 * that `?hashd-bypass=<token>` needs no encoding and means the same to every parser.
 */
export const BYPASS_TOKEN_MIN = 32;
export const BYPASS_TOKEN_MAX = 512;
/** A token file larger than this is refused before it is read (a token and a newline fit). */
export const BYPASS_FILE_MAX = 4096;
const TOKEN_SYNTAX = /^[A-Za-z0-9._~-]+$/;
const MAKE_ONE = "openssl rand -hex 32";

/** How long the cookie set by `?hashd-bypass=` lasts; its expiry is inside its MAC. */
export const BYPASS_COOKIE_MAX_AGE_SEC = 7 * 86_400;
/** "v1.<10 digits>.<43 base64url>": anything longer is not a cookie of ours, refused before parsing */
const COOKIE_MAX_LENGTH = 64;
const COOKIE_SYNTAX = /^v1\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$/;

/**
 * The token, held only as digests. Comparisons are constant-time over equal-length SHA-256
 * digests, so neither the token's length nor how much of it a guess got right shows in the time
 * taken. The cookie is not the token: it is an HMAC under a key derived from the token over one
 * hash and an expiry, so a cookie opens one hash until it expires (or the token changes), and a
 * leaked cookie does not give the token away.
 */
export class BypassSecret {
  private readonly digest: Buffer;
  private readonly cookieKey: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
    this.cookieKey = createHmac("sha256", token).update("hashd bypass cookie v1").digest();
  }

  /** Whether `given` is the token. Longer than any token: refused before it is hashed. */
  matches(given: string): boolean {
    if (given.length > BYPASS_TOKEN_MAX) return false;
    return timingSafeEqual(sha256(given), this.digest);
  }

  /** The cookie value that opens `hash` until nowMs + BYPASS_COOKIE_MAX_AGE_SEC. */
  cookieFor(hash: string, nowMs: number): string {
    const expires = Math.floor(nowMs / 1000) + BYPASS_COOKIE_MAX_AGE_SEC;
    return `v1.${expires}.${this.mac(hash, expires).toString("base64url")}`;
  }

  cookieOpens(value: string, hash: string, nowMs: number): boolean {
    if (value.length > COOKIE_MAX_LENGTH) return false;
    const m = COOKIE_SYNTAX.exec(value);
    if (m === null) return false;
    const expires = Number(m[1]);
    if (expires * 1000 <= nowMs) return false;
    const given = Buffer.from(m[2] as string, "base64url");
    return given.length === 32 && timingSafeEqual(this.mac(hash, expires), given);
  }

  private mac(hash: string, expires: number): Buffer {
    return createHmac("sha256", this.cookieKey).update(`${hash}\n${expires}`, "latin1").digest();
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "latin1").digest();
}

/** Reads and checks a token file; every refusal is a bad_request naming the file and the fix. */
export function readBypassToken(path: string): string {
  let text: string;
  try {
    const fd = openSync(path, "r");
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error("not a regular file");
      if (st.size > BYPASS_FILE_MAX) throw new Error(`larger than ${BYPASS_FILE_MAX} bytes`);
      // one byte more than allowed: a file that grew since fstat is still caught
      const buf = Buffer.alloc(BYPASS_FILE_MAX + 1);
      const n = readSync(fd, buf, 0, buf.length, 0);
      if (n > BYPASS_FILE_MAX) throw new Error(`larger than ${BYPASS_FILE_MAX} bytes`);
      text = buf.toString("latin1", 0, n);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw bad(path, `cannot be read: ${(e as Error).message}`);
  }
  const token = text.trim();
  if (token === "")
    throw bad(path, `is empty: write a token of at least ${BYPASS_TOKEN_MIN} characters (${MAKE_ONE})`);
  if (!TOKEN_SYNTAX.test(token))
    throw bad(
      path,
      `holds characters other than letters, digits and . _ ~ - (so it is usable in a URL as it is): ${MAKE_ONE}`,
    );
  if (token.length < BYPASS_TOKEN_MIN)
    throw bad(
      path,
      `holds a token of ${token.length} characters; at least ${BYPASS_TOKEN_MIN} are needed (${MAKE_ONE})`,
    );
  if (token.length > BYPASS_TOKEN_MAX)
    throw bad(path, `holds a token of ${token.length} characters; at most ${BYPASS_TOKEN_MAX} are taken`);
  return token;
}

function bad(path: string, what: string): HashdError {
  return new HashdError("bad_request", `access.bypassTokenFile ${path} ${what}`);
}

/**
 * The token file, read at start (a bad file stops the agent from starting) and again whenever its
 * inode, size or times change (checked every `checkMs`, a stat). A change to a file that is then
 * missing or refused withdraws the token until the file is good again (fail closed: an operator who
 * empties or deletes it to revoke a leaked token gets that); the error is logged once per change.
 */
export class BypassTokenFile {
  private current: BypassSecret | undefined;
  private seen: string;
  private timer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    readonly path: string,
    private readonly log: (msg: string) => void,
  ) {
    this.seen = signature(path);
    this.current = new BypassSecret(readBypassToken(path));
  }

  /** Throws a bad_request if the file is missing, unreadable, too large, empty or too short. */
  static open(path: string, log: (msg: string) => void): BypassTokenFile {
    return new BypassTokenFile(path, log);
  }

  secret(): BypassSecret | undefined {
    return this.current;
  }

  /** Reads the file again if it changed since the last look. */
  check(): void {
    const now = signature(this.path);
    if (now === this.seen) return;
    this.seen = now;
    try {
      this.current = new BypassSecret(readBypassToken(this.path));
      this.log(`access: bypass token read again from ${this.path}`);
    } catch (e) {
      this.current = undefined;
      this.log(`access: ${(e as Error).message}; no bypass token is taken until it is fixed`);
    }
  }

  start(checkMs = 5000): void {
    this.timer ??= setInterval(() => this.check(), checkMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function signature(path: string): string {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch (e) {
    return `missing: ${(e as NodeJS.ErrnoException).code ?? e}`;
  }
}
