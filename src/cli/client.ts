import { HashdError } from "../lib/errors.ts";

export const DEFAULT_CONTROL_SOCKET = "/run/hashd/control.sock";

/** The options of every command that asks the local agent: its control socket, and JSON output. */
export const agentArgs = {
  socket: { type: "string", description: "control socket of the agent", default: DEFAULT_CONTROL_SOCKET },
  json: { type: "boolean", description: "print JSON", default: false },
} as const;

/** Talks to the local agent's control API over its unix socket. */
export class AgentClient {
  constructor(readonly socketPath: string = DEFAULT_CONTROL_SOCKET) {}

  async request<T>(method: string, path: string, body?: unknown, timeoutMs = 15 * 60_000): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`http://agent${path}`, {
        method,
        unix: this.socketPath,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new HashdError(
        "unavailable",
        `cannot reach the hashd agent at ${this.socketPath}: ${(e as Error).message} (is \`hashd serve\` running, and are you root?)`,
      );
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new HashdError("internal", `agent answered ${response.status} with a body that is not JSON`);
    }
    if (!response.ok) throw HashdError.fromJSON(json, response.status);
    return json as T;
  }
}
