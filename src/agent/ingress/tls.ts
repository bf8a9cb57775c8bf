import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { SocketHandler, TCPSocketListener, TCPSocketListenOptions } from "bun";
import { HashdError } from "../../lib/errors.ts";
import type { IngressLog, IngressTlsConfig } from "./types.ts";

/**
 * The ingress's TLS listener: one wildcard certificate (*.<zone> and <zone>) read from two PEM
 * files, TLS 1.2 and 1.3 only, ALPN http/1.1. The proxy code is the same as on the plain listener:
 * Bun gives a TLS socket the same interface as a TCP one, so ProxyConnection runs over it unchanged.
 *
 * Reload: Bun (1.4) cannot change a listener's certificate. `listener.reload()` takes only new
 * callbacks (a `tls` passed to it is ignored: the next handshake still gets the old certificate),
 * Bun.listen has no SNI callback, and `socket.upgradeTLS` on a plain listener (a context per
 * connection) handshakes as fast but serves keep-alive requests ~40 % slower (measured: 26.6k vs
 * 43.1k requests/s). So a reload binds a second listener on the same address and port with the new
 * certificate (SO_REUSEPORT; both listeners share it), then stops the old one from accepting
 * (`stop(false)`): its open connections, mid-handshake ones included, carry on with the old
 * certificate until they close; new handshakes get the new one. One window remains: a connection
 * the kernel queued on the old listener but that Bun had not yet accepted when it stops is reset,
 * unless net.ipv4.tcp_migrate_req = 1 (Linux >= 5.14) moves it to the new listener; the NixOS
 * module sets that sysctl.
 *
 * A new pair that does not parse, or whose key does not match the certificate, is refused before
 * any listener changes: the old certificate stays and an error is logged (every check until the
 * files are fixed logs it again only if they change again).
 */

/** TLS 1.0 and 1.1 off (SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1; BoringSSL's default minimum is 1.2 already). */
const NO_OLD_TLS = 0x04000000 | 0x10000000;
/** ALPN in wire format (length-prefixed): Bun passes the bytes through as they are. */
const ALPN_HTTP11 = Buffer.from("\x08http/1.1", "latin1");

export interface TlsMaterial {
  cert: string;
  key: string;
  /** SHA-256 fingerprint of the leaf certificate */
  fingerprint: string;
  subject: string;
  validTo: string;
  /** what the files were when read (a change means a reload) */
  stamp: string;
}

/**
 * Reads and checks the pair: the certificate file holds at least one certificate (the leaf first),
 * the key parses and is the leaf's. Throws a HashdError naming the file and what is wrong.
 */
export function loadTlsMaterial(certificateFile: string, keyFile: string): TlsMaterial {
  const stamp = fileStamp(certificateFile, keyFile);
  const cert = readPem(certificateFile, "tls.certificateFile");
  const key = readPem(keyFile, "tls.keyFile");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (error) {
    throw new HashdError(
      "bad_request",
      `tls.certificateFile ${certificateFile}: not a PEM certificate (${String(error)})`,
    );
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(key));
  } catch (error) {
    throw new HashdError("bad_request", `tls.keyFile ${keyFile}: not a PEM private key (${String(error)})`);
  }
  if (!matches)
    throw new HashdError(
      "bad_request",
      `tls.keyFile ${keyFile} is not the key of the certificate in ${certificateFile} (${leaf.subject})`,
    );
  return { cert, key, fingerprint: leaf.fingerprint256, subject: leaf.subject, validTo: leaf.validTo, stamp };
}

function readPem(path: string, field: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new HashdError("bad_request", `${field} ${path} cannot be read: ${String(error)}`);
  }
}

/** Inode, size and mtime of both files (following symlinks: ACME clients swap them). */
function fileStamp(...paths: string[]): string {
  return paths
    .map((path) => {
      try {
        const s = statSync(path);
        return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return "missing";
      }
    })
    .join("|");
}

/** net.ipv4.tcp_migrate_req of this network namespace ("" when unreadable). */
export function migrateSysctl(): string {
  try {
    return readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim();
  } catch {
    return "";
  }
}

export function tlsOptions(material: TlsMaterial) {
  return {
    cert: material.cert,
    key: material.key,
    ALPNProtocols: ALPN_HTTP11,
    secureOptions: NO_OLD_TLS,
  };
}

/** The TLS listener and its reloads. */
export class TlsListener<Data> {
  private listener: TCPSocketListener<Data>;
  /** listeners replaced by reloads: no longer accepting, their connections still open */
  private readonly replaced: TCPSocketListener<Data>[] = [];
  private material: TlsMaterial;
  private readonly timer: ReturnType<typeof setInterval>;
  private stopped = false;
  /** the stamp of files last refused, so a broken pair is logged once per change, not every check */
  private refused = "";
  readonly hostname: string;
  readonly port: number;

  constructor(
    private readonly config: IngressTlsConfig,
    hostname: string,
    private readonly handlers: SocketHandler<Data>,
    private readonly log: IngressLog,
  ) {
    // a missing or broken pair at start is an error the agent refuses to start with
    this.material = loadTlsMaterial(config.certificateFile, config.keyFile);
    this.hostname = config.hostname ?? hostname;
    this.listener = this.listen(config.port);
    this.port = this.listener.port;
    this.timer = setInterval(() => this.check(), config.checkSec * 1000);
    this.timer.unref();
    if (migrateSysctl() !== "1")
      log(
        "warn",
        "net.ipv4.tcp_migrate_req is not 1: a certificate reload may reset a connection not yet accepted",
        {
          fix: "sysctl -w net.ipv4.tcp_migrate_req=1 (the NixOS module sets it)",
        },
      );
    log("info", "tls listening", {
      port: this.port,
      subject: this.material.subject,
      validTo: this.material.validTo,
    });
  }

  /** The certificate served to new handshakes now. */
  get current(): Pick<TlsMaterial, "fingerprint" | "subject" | "validTo"> {
    const { fingerprint, subject, validTo } = this.material;
    return { fingerprint, subject, validTo };
  }

  private listen(port: number): TCPSocketListener<Data> {
    return Bun.listen<Data>({
      hostname: this.hostname,
      port,
      socket: this.handlers,
      tls: tlsOptions(this.material),
      // the reload's second listener binds beside this one (SO_REUSEPORT)
      reusePort: true,
    } as TCPSocketListenOptions<Data>);
  }

  /** Reloads if the files changed since they were last read. Returns whether the certificate changed. */
  check(): boolean {
    if (this.stopped) return false;
    const stamp = fileStamp(this.config.certificateFile, this.config.keyFile);
    if (stamp === this.material.stamp || stamp === this.refused) return false;
    return this.reload();
  }

  /** Reads the files again; a good pair replaces the listener's certificate, a bad one is logged and kept out. */
  reload(): boolean {
    if (this.stopped) return false;
    let material: TlsMaterial;
    try {
      material = loadTlsMaterial(this.config.certificateFile, this.config.keyFile);
    } catch (error) {
      this.refused = fileStamp(this.config.certificateFile, this.config.keyFile);
      this.log("error", "tls certificate reload refused, the old certificate stays", {
        error: error instanceof Error ? error.message : String(error),
        serving: this.material.subject,
        validTo: this.material.validTo,
      });
      return false;
    }
    const old = this.listener;
    const previous = this.material;
    this.material = material;
    let next: TCPSocketListener<Data>;
    try {
      next = this.listen(this.port);
    } catch (error) {
      // Bun refused the pair after all (or the port): keep serving the old one
      this.material = previous;
      this.refused = material.stamp;
      this.log("error", "tls certificate reload failed, the old certificate stays", { error: String(error) });
      return false;
    }
    this.listener = next;
    this.refused = "";
    old.stop(false);
    this.replaced.push(old);
    this.log("info", "tls certificate reloaded", {
      subject: material.subject,
      validTo: material.validTo,
      fingerprint: material.fingerprint,
    });
    return true;
  }

  /** Stops accepting; closeActive cuts the open connections too. */
  stop(closeActive = false): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.listener.stop(closeActive);
    for (const old of this.replaced) old.stop(closeActive);
  }
}
