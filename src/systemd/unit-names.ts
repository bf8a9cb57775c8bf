import { STORE_HASH_SOURCE } from "../model/names.ts";
import { parseStoreHash } from "../nix/store-path.ts";

/**
 * Unit and socket names of one hash. The hash is validated against nix-base32 first, so it can only
 * contain [0-9a-z]: nothing in it needs escaping in a unit name (systemd.unit(5)) or in a path, and
 * no unit-file syntax can be injected through it.
 */
export interface HashUnits {
  hash: string;
  /** common prefix of the socket and service unit: hashd-<hash> */
  base: string;
  socket: string;
  /** what the socket triggers: the program itself (fd) or systemd-socket-proxyd (unix, port) */
  service: string;
  /** the program's own unit in the proxied modes (unix, port): hashd-<hash>-app.service */
  app: string;
  /** the never-elapsing trigger that creates the app unit without starting it (proxied-unit.ts) */
  appTimer: string;
  socketPath: string;
}

export const UNIT_PREFIX = "hashd-";

export function hashUnits(hash: string, socketDir: string): HashUnits {
  const checked = parseStoreHash(hash);
  const base = `${UNIT_PREFIX}${checked}`;
  return {
    hash: checked,
    base,
    socket: `${base}.socket`,
    service: `${base}.service`,
    app: `${base}-app.service`,
    appTimer: `${base}-app.timer`,
    socketPath: `${socketDir}/${checked}.sock`,
  };
}

/** The hash a hashd unit name belongs to, or undefined for any other unit. */
export function hashOfUnit(unit: string): string | undefined {
  return UNIT_OF_HASH.exec(unit)?.[1];
}

const UNIT_OF_HASH = new RegExp(
  `^${UNIT_PREFIX}(${STORE_HASH_SOURCE})(\\.socket|\\.service|-app\\.service|-app\\.timer)$`,
);
