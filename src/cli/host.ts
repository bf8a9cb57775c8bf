import { RemoteHashd } from "../deploy/remote.ts";
import { parseTarget } from "../deploy/target.ts";
import { exec } from "../lib/exec.ts";
import { AgentClient } from "./client.ts";

/** `--host [user@]host[:port]`: ask that host's agent, through its hashd CLI over ssh. */
export const hostArg = {
  host: { type: "string", description: "ask this host's agent over SSH: [user@]host[:port]" },
} as const;

/** The host's hashd; the target is checked before ssh runs. Its --json output is what the local API answers. */
export function onHost(host: string): RemoteHashd {
  return new RemoteHashd(parseTarget(host), exec);
}

/**
 * One request to the agent: the local one over its control socket, or with --host that host's
 * hashd over SSH running `remote` (its --json output is the same JSON).
 */
export function askAgent<T>(
  args: { socket: string; host?: string | undefined },
  method: string,
  path: string,
  body: unknown,
  remote: string[],
): Promise<T> {
  return args.host
    ? onHost(args.host).hashdJson<T>(remote)
    : new AgentClient(args.socket).request<T>(method, path, body);
}
