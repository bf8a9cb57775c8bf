import { RemoteHashd } from "../deploy/remote.ts";
import { parseTarget } from "../deploy/target.ts";
import { exec } from "../lib/exec.ts";

/** `--host [user@]host[:port]`: ask that host's agent, through its hashd CLI over ssh. */
export const hostArg = {
  host: { type: "string", description: "ask this host's agent over SSH: [user@]host[:port]" },
} as const;

/** The host's hashd; the target is checked before ssh runs. Its --json output is what the local API answers. */
export function onHost(host: string): RemoteHashd {
  return new RemoteHashd(parseTarget(host), exec);
}
