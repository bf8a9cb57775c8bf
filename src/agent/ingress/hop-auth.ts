import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Proof that a request carrying `x-hashd-hop` was forwarded by a member's ingress, not written by
 * a client. A member that forwards a request signs what the receiving ingress will trust from it
 * (the hop's member and hash, the method and target, and the X-Forwarded-For/-Host/-Proto it sends)
 * with a key derived from the cluster key, and sends `x-hashd-hop-auth: <unix seconds>.<mac>`. The
 * receiver checks the MAC in constant time and that the time is within MAX_SKEW_SEC of its clock.
 * A hop without a valid proof is ignored: the request is routed and its forwarded headers rewritten
 * as for any client. Without a cluster key (a cluster of one) no hop is ever trusted.
 *
 * A replay within the window can only repeat the same request with the same forwarded headers to
 * the same hash: what an on-path attacker could send as a plain client anyway, less the lie.
 */

/** The label the hop keys are derived from the cluster keys under (Keyring.derive), so none equals a gossip key. */
export const HOP_KEY_INFO = "hashd ingress hop v1";
/** How far a proof's time may be from this host's clock (members keep NTP time; this is slack). */
export const MAX_SKEW_SEC = 60;
/** "<10 digits>.<43 base64url characters>": anything longer is not a proof. */
const MAX_PROOF_LENGTH = 64;

export interface HopFields {
  member: string;
  hash: string;
  method: string;
  /** the request-target as sent to the peer */
  target: string;
  forwardedFor: string;
  forwardedHost: string;
  forwardedProto: string;
}

export class HopAuth {
  private readonly keys: Buffer[];

  /**
   * keys: derived from the cluster keys under HOP_KEY_INFO; the first signs and every one verifies,
   * so a key rotation works as it does for gossip
   */
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new Error("hop authentication needs at least one key");
    this.keys = keys.map((key) => Buffer.from(key));
  }

  /** undefined without keys (a cluster of one): then no hop is trusted */
  static create(keys: readonly Uint8Array[]): HopAuth | undefined {
    return keys.length === 0 ? undefined : new HopAuth(keys);
  }

  sign(fields: HopFields, nowMs: number): string {
    const seconds = Math.floor(nowMs / 1000);
    return `${seconds}.${mac(this.keys[0] as Buffer, seconds, fields).toString("base64url")}`;
  }

  verify(proof: string | undefined, fields: HopFields, nowMs: number): boolean {
    if (proof === undefined || proof.length > MAX_PROOF_LENGTH) return false;
    const dot = proof.indexOf(".");
    const secondsText = proof.slice(0, dot);
    if (dot < 1 || !/^[0-9]{1,12}$/.test(secondsText)) return false;
    const seconds = Number(secondsText);
    if (Math.abs(seconds - nowMs / 1000) > MAX_SKEW_SEC) return false;
    const given = Buffer.from(proof.slice(dot + 1), "base64url");
    if (given.length !== 32) return false;
    let valid = false;
    // every key is tried (no early exit), so timing says nothing about which one matched
    for (const key of this.keys) if (timingSafeEqual(mac(key, seconds, fields), given)) valid = true;
    return valid;
  }
}

function mac(key: Buffer, seconds: number, f: HopFields): Buffer {
  // header values hold no LF (the parser refuses it), so LF separates the fields unambiguously
  const text = `${seconds}\n${f.member}\n${f.hash}\n${f.method}\n${f.target}\n${f.forwardedFor}\n${f.forwardedHost}\n${f.forwardedProto}`;
  return createHmac("sha256", key).update(text, "latin1").digest();
}
