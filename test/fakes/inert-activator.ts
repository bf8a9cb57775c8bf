import { Activator } from "../../src/agent/lifecycle/activator.ts";
import type { StateStore } from "../../src/agent/state/store.ts";
import { parseConfig } from "../../src/model/config.ts";
import type { Nix } from "../../src/nix/nix.ts";
import type { Systemctl } from "../../src/systemd/systemctl.ts";

/**
 * An Activator over `store` that must never reach systemd or Nix: for control API tests that only
 * read deployments (its units, URLs and activations), where any call to either would be a bug.
 */
export function inertActivator(store: StateStore): Activator {
  return new Activator({
    config: parseConfig({}),
    socketDir: "/run/hashd/sockets",
    store,
    systemctl: {} as Systemctl,
    nix: {} as Nix,
    log: () => {},
  });
}
