import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HashdError } from "../../lib/errors.ts";
import { isStoreHash } from "../../model/names.ts";

/**
 * Who may hold a hash: the service of that hash. The service API's socket is open to every local
 * process (DynamicUser services have no fixed uid to allow) and Bun reads no peer credentials, so
 * a hold carries a token instead: HMAC-SHA256 of the hash under a secret that only the agent (root)
 * reads. The agent writes each hash's token to a root-only directory and bind-mounts that one file
 * into the hash's own units (BindReadOnlyPaths=), where the service reads it; no other service and
 * no unprivileged user can read it. The secret is kept in the state directory, so tokens stay valid
 * across agent restarts and reboots.
 */
export class HoldTokens {
  private constructor(private readonly secret: Buffer) {}

  static fromSecret(secret: Uint8Array): HoldTokens {
    if (secret.length < 32) throw new Error("hold token secret must be at least 32 bytes");
    return new HoldTokens(Buffer.from(secret));
  }

  /** Reads `<stateDir>/hold-secret`, creating it (32 random bytes, 0600) on first use. */
  static open(stateDir: string): HoldTokens {
    const path = join(stateDir, "hold-secret");
    try {
      return HoldTokens.fromSecret(readFileSync(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, randomBytes(32), { mode: 0o600 });
    renameSync(temp, path);
    return HoldTokens.fromSecret(readFileSync(path));
  }

  tokenFor(hash: string): string {
    return createHmac("sha256", this.secret).update(`hashd hold v1 ${hash}`).digest("base64url");
  }

  /** True only for the token of exactly this hash (constant time in the token). */
  verify(hash: string, token: string | undefined): boolean {
    if (token === undefined || !isStoreHash(hash)) return false;
    const expected = Buffer.from(this.tokenFor(hash));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** Throws `forbidden` unless `authorization` is `Bearer <the token of hash>`. */
  check(hash: string, authorization: string | undefined): void {
    const token = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(authorization ?? "")?.[1];
    if (!this.verify(hash, token)) {
      throw new HashdError(
        "forbidden",
        token === undefined
          ? "a hold needs `authorization: Bearer <token>`: the service's token is in the file $HASHD_HOLD_TOKEN_FILE"
          : `this token does not hold ${hash}: a service may hold only its own hash`,
      );
    }
  }
}

/** Where the agent keeps each hash's token file (root only), and where a service sees its own. */
export function holdTokenPaths(runtimeDir: string, hash: string): { source: string; target: string } {
  return { source: join(runtimeDir, "hold-tokens", hash), target: join(runtimeDir, "hold-token") };
}

/**
 * Writes the hash's token file and the empty file its bind mount covers, before the hash's units
 * are created (systemd needs both paths to exist when the service starts). Idempotent: the token of
 * a hash never changes while the secret stays.
 */
export function installHoldToken(
  tokens: HoldTokens,
  runtimeDir: string,
  hash: string,
): { source: string; target: string } {
  const paths = holdTokenPaths(runtimeDir, hash);
  const dir = join(runtimeDir, "hold-tokens");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  // 0644 inside a 0700 directory: unreadable on the host, readable through the service's bind mount
  const temp = `${paths.source}.tmp`;
  writeFileSync(temp, tokens.tokenFor(hash), { mode: 0o644 });
  renameSync(temp, paths.source);
  try {
    writeFileSync(paths.target, "", { flag: "wx", mode: 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  return paths;
}
