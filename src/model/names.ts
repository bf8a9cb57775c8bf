/**
 * The shapes of hashd's names, each defined once: store hashes, DNS labels and alias names, zones.
 * Every check in the agent, the CLI, the gossip codec and unit naming uses these; the Nix side
 * (nixos-module/default.nix, nix/hash-url.nix) writes the same patterns, and
 * test/name-patterns.test.ts compares them. Nothing here imports from the rest of src.
 */

/** nix-base32 omits e, o, u and t; a store hash is 32 of these characters (160 bits). */
export const STORE_HASH_SOURCE = "[0-9a-df-np-sv-z]{32}";
const STORE_HASH = new RegExp(`^${STORE_HASH_SOURCE}$`);

/** What a store hash must be, for error messages. */
export const EXPECTED_HASH = "32 characters of nix-base32: 0-9 and a-z without e, o, u, t";

export function isStoreHash(value: string): boolean {
  return STORE_HASH.test(value);
}

/**
 * A DNS label in lower case (RFC 1123): 1 to 63 of a-z, 0-9 and -, not starting or ending with -.
 * What `<label>.<zone>` may hold before the zone, and each label of a zone.
 */
export const DNS_LABEL_SOURCE = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
const DNS_LABEL = new RegExp(`^${DNS_LABEL_SOURCE}$`);

export function isDnsLabel(value: string): boolean {
  return DNS_LABEL.test(value);
}

/**
 * Alias names are DNS labels (they become `<alias>.<zone>`), and never 32 nix-base32 characters,
 * which the ingress would read as a hash.
 */
export function isAliasName(value: unknown): value is string {
  return typeof value === "string" && DNS_LABEL.test(value) && !STORE_HASH.test(value);
}

export const EXPECTED_ALIAS = "a DNS label: 1-63 of a-z, 0-9 and -";

/**
 * A zone: lower-case DNS labels separated by dots, `localhost` or `svc.example.org`, with no
 * trailing dot. At most ZONE_MAX_LENGTH characters: a DNS name has at most 253, and
 * `<hash>.<zone>` must be one, so the zone leaves room for the 32 characters of a hash and a dot.
 * (A POSIX extended regular expression as well: Nix's builtins.match reads the same source.)
 */
export const ZONE_SOURCE = `${DNS_LABEL_SOURCE}(\\.${DNS_LABEL_SOURCE})*`;
export const ZONE_MAX_LENGTH = 253 - 33;
/** The zone's syntax alone (isZone checks the length too). */
export const ZONE_SYNTAX = new RegExp(`^${ZONE_SOURCE}$`);

export function isZone(value: string): boolean {
  return value.length <= ZONE_MAX_LENGTH && ZONE_SYNTAX.test(value);
}

export const EXPECTED_ZONE = `a DNS name of lower-case labels (1-63 of a-z, 0-9 and -, not starting or ending with -) separated by dots, at most ${ZONE_MAX_LENGTH} characters, such as localhost or svc.example.org`;

/**
 * A service's name (manifest `name`): what its versions share. It names the service's state
 * directory and its credentials in the host's config, so it is a plain file name: 1 to 64 letters,
 * digits and . _ + -, starting with a letter or digit (nix/manifest.nix's namePattern).
 */
export const SERVICE_NAME_SOURCE = "[A-Za-z0-9][A-Za-z0-9._+-]{0,63}";
export const SERVICE_NAME = new RegExp(`^${SERVICE_NAME_SOURCE}$`);
export const EXPECTED_SERVICE_NAME = "1-64 of letters, digits and . _ + - (leading letter or digit)";

/**
 * A credential's name (manifest `credentials`, the host's `credentials.<service>.<name>`): the file
 * name the program reads in $CREDENTIALS_DIRECTORY, and systemd's credential ID. Lower case, so
 * that a name means one file on every file system, and never `.` or `..`.
 */
export const CREDENTIAL_NAME_SOURCE = "[a-z0-9][a-z0-9_.-]{0,63}";
export const CREDENTIAL_NAME = new RegExp(`^${CREDENTIAL_NAME_SOURCE}$`);
export const EXPECTED_CREDENTIAL_NAME = "1-64 of a-z, 0-9 and _ . - (leading letter or digit)";
/** How many credentials one manifest may name, and one service may be given by a host. */
export const CREDENTIALS_MAX = 32;

/**
 * An absolute path that may be spliced into a unit setting (LoadCredential=) as it is: segments of
 * letters, digits and . _ @ + -, none starting with a dot (so no `.` or `..`), no space, no `%` (a
 * systemd specifier), no `:` (LoadCredential='s separator). nixos-module/default.nix's `segments`.
 */
export const PLAIN_PATH_SOURCE = "(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+";
export const PLAIN_PATH = new RegExp(`^${PLAIN_PATH_SOURCE}$`);
export const EXPECTED_PLAIN_PATH =
  "an absolute path of letters, digits and . _ @ + - (no segment starting with a dot)";
