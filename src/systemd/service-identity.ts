import { createHash } from "node:crypto";
import { CREDENTIAL_NAME, EXPECTED_SERVICE_NAME, PLAIN_PATH, SERVICE_NAME } from "../model/names.ts";

/**
 * What a hash's program runs as and keeps, when that belongs to its service's name rather than its
 * hash: the state directory (manifest `stateDirectory`), the user that owns it, and the
 * credentials systemd hands the program.
 *
 * State by name: every version of `api` gets StateDirectory=hashd-state/api (systemd.exec(5):
 * /var/lib/hashd-state/api, with DynamicUser= really /var/lib/private/hashd-state/api), and runs
 * as the same DynamicUser= name. systemd gives units that name the same dynamic user one uid while
 * any of them runs, and chowns the directory to the uid of the moment at each start, so v1 and v2
 * running at once during a switch share the files, and a version started after both stopped owns
 * them again (checked on systemd 252: test/sandbox/credentials.test.ts).
 */

/** The parent of every service's state directory, relative to /var/lib. */
export const STATE_DIRECTORY_ROOT = "hashd-state";

function checkName(name: string): string {
  if (!SERVICE_NAME.test(name))
    throw new Error(`not a service name (${EXPECTED_SERVICE_NAME}): ${JSON.stringify(name)}`);
  return name;
}

/** StateDirectory= of a service, by name. A service name is a plain file name (names.ts). */
export function stateDirectoryOf(name: string): string {
  return `${STATE_DIRECTORY_ROOT}/${checkName(name)}`;
}

/**
 * The dynamic user of a service's name: `hashd-<readable part>-<digest>`. User names longer than
 * 31 characters fail the start on 252, and service names are up to 64 characters with upper case,
 * dots and plus signs, so the name is shortened to 16 characters of [a-z0-9-] for `ps` and made
 * unique by 8 hex characters of its SHA-256 (api and API, a.b and a-b get different users). The
 * dash before the digest keeps it apart from the per-hash users (`hashd-<25 hash characters>`,
 * proxied-unit.ts), which have none after the prefix.
 */
export function stateUser(name: string): string {
  checkName(name);
  const readable = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, 16)
    .replace(/-+$/, "");
  const digest = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `hashd-${readable}-${digest}`;
}

/** One credential of a hash: the name the program reads, the host's file systemd reads. */
export interface UnitCredential {
  name: string;
  path: string;
}

/** A file made by `systemd-creds encrypt` (systemd's own examples name them `*.cred`). */
export function isEncryptedCredential(path: string): boolean {
  return path.endsWith(".cred");
}

/**
 * LoadCredential=<name>:<path>, or LoadCredentialEncrypted= for a `.cred` file (decrypted by
 * systemd with the host key or the TPM, checked on 252 with the host key). systemd reads the file
 * as root when the program starts and puts its copy in the unit's own $CREDENTIALS_DIRECTORY
 * (/run/credentials/<unit>/, owned by the unit's user, mode 0500 and 0400), which a unit with a
 * mount namespace, as every hashd unit has, does not see of other units. Both parts were checked
 * by the config; they are checked again because they are spliced into a unit setting.
 */
export function credentialProperties(credentials: readonly UnitCredential[]): string[] {
  return credentials.map(({ name, path }) => {
    if (!CREDENTIAL_NAME.test(name)) throw new Error(`not a credential name: ${JSON.stringify(name)}`);
    if (!PLAIN_PATH.test(path))
      throw new Error(`credential ${name}: not a plain absolute path: ${JSON.stringify(path)}`);
    return `${isEncryptedCredential(path) ? "LoadCredentialEncrypted" : "LoadCredential"}=${name}:${path}`;
  });
}
