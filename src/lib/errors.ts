/**
 * One error type for everything hashd refuses or fails at. The code names the cause; the HTTP
 * status and exit code are derived from it in one place each (control API, CLI).
 */
export type ErrorCode =
  | "bad_request" // malformed input: store path, hash, manifest, flags
  | "not_found" // unknown hash, alias or host
  | "missing_credential" // a credential a manifest names has no readable file on this host
  | "forbidden" // the caller may not do this (a hold on another service's hash)
  | "conflict" // the request contradicts current state
  | "nix_failed" // nix copy / path-info refused or failed (signatures included)
  | "systemd_failed" // systemd refused a unit or a unit failed to start
  | "timeout" // readiness or an operation did not finish in time
  | "unavailable" // the agent or a peer cannot be reached
  | "rollout_aborted" // a rollout or guard `--wait` waited for ended by switching back
  | "internal";

const httpStatusByCode: Record<ErrorCode, number> = {
  bad_request: 400,
  not_found: 404,
  // the request is fine; this host lacks what it needs to carry it out (a file only the host can add)
  missing_credential: 422,
  forbidden: 403,
  conflict: 409,
  nix_failed: 502,
  systemd_failed: 502,
  timeout: 504,
  unavailable: 503,
  rollout_aborted: 409,
  internal: 500,
};

/** Exit codes of the CLI; documented in the README. 0 is success, 1 a usage error. */
const exitCodeByCode: Record<ErrorCode, number> = {
  bad_request: 2,
  not_found: 3,
  missing_credential: 3,
  forbidden: 9,
  conflict: 4,
  nix_failed: 5,
  systemd_failed: 6,
  timeout: 7,
  unavailable: 8,
  rollout_aborted: 10,
  internal: 70,
};

export class HashdError extends Error {
  override readonly name = "HashdError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get httpStatus(): number {
    return httpStatusByCode[this.code];
  }

  get exitCode(): number {
    return exitCodeByCode[this.code];
  }

  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return {
      error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) },
    };
  }

  static fromJSON(body: unknown, fallbackStatus: number): HashdError {
    const err = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })
      ?.error;
    if (
      err &&
      typeof err.message === "string" &&
      typeof err.code === "string" &&
      err.code in httpStatusByCode
    ) {
      return new HashdError(err.code as ErrorCode, err.message, err.details);
    }
    return new HashdError(
      fallbackStatus >= 500 ? "internal" : "bad_request",
      `unexpected response ${fallbackStatus}`,
    );
  }
}
