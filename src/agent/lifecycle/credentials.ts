import { stat } from "node:fs/promises";
import { HashdError } from "../../lib/errors.ts";
import type { Config } from "../../model/config.ts";
import type { Manifest } from "../../model/manifest.ts";
import { isEncryptedCredential, type UnitCredential } from "../../systemd/service-identity.ts";

/**
 * systemd's limits (src/core/execute.c, 252): one credential at most 1 MiB, and all of a unit's
 * together too, as they are kept in unswappable memory. A start past them fails.
 */
export const CREDENTIAL_SIZE_MAX = 1024 * 1024;
export const CREDENTIALS_TOTAL_MAX = CREDENTIAL_SIZE_MAX;
/** An encrypted file may be 128 KiB larger (CREDENTIAL_ENCRYPTED_SIZE_MAX); what it decrypts to is not known here. */
export const ENCRYPTED_CREDENTIAL_SIZE_MAX = CREDENTIAL_SIZE_MAX + 128 * 1024;

/**
 * The files of the credentials a manifest names, as this host maps them (config
 * `credentials.<service name>.<credential name>`), checked before anything of the hash is created:
 * a name the host maps to nothing, a file that is missing, not a regular file (systemd would load a
 * directory as many credentials), or larger than systemd takes is refused with `missing_credential`
 * (exit code 3), naming the service, the credential and the path.
 *
 * The agent never reads a value: it looks at the file's metadata only (systemd reads it, as root,
 * when the program starts), so no value can reach its database, gossip, events or logs. The agent
 * runs without capabilities, so a file it cannot stat (a directory of another user's, mode 0700)
 * is refused even though systemd could read it.
 */
export async function hashCredentials(
  config: Pick<Config, "credentials">,
  manifest: Manifest,
): Promise<UnitCredential[]> {
  const service = manifest.name;
  const names = manifest.credentials;
  if (names.length === 0) return [];
  const mapped = Object.hasOwn(config.credentials, service) ? config.credentials[service] : undefined;
  const out: UnitCredential[] = [];
  let total = 0;
  for (const name of names) {
    const path = mapped && Object.hasOwn(mapped, name) ? mapped[name] : undefined;
    if (path === undefined) {
      throw new HashdError(
        "missing_credential",
        `service ${service} needs credential ${name}, which this host maps to no file: set credentials.${service}.${name} in the agent's config to the file's path (on NixOS, services.hashd.credentials.${service}.${name}); nothing was started`,
        { service, credential: name },
      );
    }
    const why = (reason: string) =>
      new HashdError(
        "missing_credential",
        `service ${service}, credential ${name}: ${path} ${reason}; nothing was started`,
        { service, credential: name, path },
      );
    let size: number;
    try {
      const s = await stat(path);
      if (!s.isFile()) throw why("is not a regular file");
      size = s.size;
    } catch (e) {
      if (e instanceof HashdError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw why(
        code === "ENOENT"
          ? "does not exist"
          : code === "EACCES"
            ? "cannot be reached by the agent (EACCES)"
            : `cannot be read (${code ?? (e as Error).message})`,
      );
    }
    const encrypted = isEncryptedCredential(path);
    const max = encrypted ? ENCRYPTED_CREDENTIAL_SIZE_MAX : CREDENTIAL_SIZE_MAX;
    if (size > max) throw why(`is ${size} bytes; systemd takes at most ${max}`);
    if (!encrypted) total += size;
    if (total > CREDENTIALS_TOTAL_MAX) {
      throw why(
        `brings the credentials of ${service} to ${total} bytes together; systemd takes at most ${CREDENTIALS_TOTAL_MAX} per unit`,
      );
    }
    out.push({ name, path });
  }
  return out;
}
