import { z } from "zod";
import { HashdError } from "../lib/errors.ts";
import { zodProblems } from "../lib/zod-problems.ts";
import {
  CREDENTIAL_NAME,
  CREDENTIALS_MAX,
  EXPECTED_CREDENTIAL_NAME,
  EXPECTED_SERVICE_NAME,
  SERVICE_NAME,
} from "./names.ts";

/** Where a service closure keeps its manifest, relative to the store path (written by lib.mkService). */
export const MANIFEST_RELATIVE_PATH = "hashd/service.json";

/** Hard cap on the manifest file: it is read by the agent as root, before anything else. */
export const MANIFEST_MAX_BYTES = 64 * 1024;

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must match [A-Za-z_][A-Za-z0-9_]*");
const envValue = z
  .string()
  .max(4096)
  .regex(/^[^\0\n]*$/, "must not contain NUL or newline");
const argvItem = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^[^\0\n]*$/, "must not contain NUL or newline");

/**
 * How the program gets its listening socket.
 * - fd: systemd passes the socket as fd 3 (LISTEN_FDS=1, sd_listen_fds(3)).
 * - unix: the program listens on the unix path in $HASHD_UPSTREAM; systemd-socket-proxyd bridges.
 * - port: the program listens on 127.0.0.1:$PORT inside a private network namespace; proxyd bridges.
 */
const socketSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("fd") }).strict(),
  z.object({ type: z.literal("unix") }).strict(),
  z.object({ type: z.literal("port"), port: z.number().int().min(1).max(65535) }).strict(),
]);

/**
 * When the service counts as ready.
 * - notify: it sends READY=1 (sd_notify or the systemd-notify CLI; NotifyAccess=all is set).
 * - http: GET <path> through its socket answers 2xx.
 * - accept: the program is running (fd) or its upstream accepts a connection (unix, port).
 */
const readinessSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("notify") }).strict(),
  z
    .object({
      type: z.literal("http"),
      path: z
        .string()
        .regex(/^\/[^\s]*$/, "must be an absolute URL path without spaces")
        .max(1024),
    })
    .strict(),
  z.object({ type: z.literal("accept") }).strict(),
]);

export const manifestSchema = z
  .object({
    schema: z.literal(1),
    name: z.string().regex(SERVICE_NAME, `must be ${EXPECTED_SERVICE_NAME}`),
    exec: z
      .array(argvItem)
      .min(1)
      .max(256)
      .refine((argv) => argv[0]?.startsWith("/"), {
        message: "exec[0] must be an absolute path",
      }),
    socket: socketSchema.default({ type: "fd" }),
    readiness: readinessSchema.default({ type: "accept" }),
    /** seconds without in-flight requests or holds before the process is stopped; 0 = never */
    idleStopSec: z
      .number()
      .int()
      .min(0)
      .max(86_400 * 365)
      .default(0),
    /** seconds a stopping service gets to finish (TimeoutStopSec) */
    drainTimeoutSec: z.number().int().min(1).max(86_400).default(30),
    /** seconds a start may take before it counts as failed (TimeoutStartSec) */
    startTimeoutSec: z.number().int().min(1).max(3600).default(60),
    environment: z
      .record(envName, envValue)
      .default({})
      .refine((env) => Object.keys(env).length <= 256, { message: "at most 256 variables" }),
    /**
     * The names of the credentials the program reads from $CREDENTIALS_DIRECTORY/<name>: never
     * their values, which the host maps to files (config `credentials.<service name>.<name>`).
     */
    credentials: z
      .array(z.string().regex(CREDENTIAL_NAME, `must be ${EXPECTED_CREDENTIAL_NAME}`))
      .max(CREDENTIALS_MAX, `at most ${CREDENTIALS_MAX} credentials`)
      .default([])
      .superRefine((names, ctx) => {
        const seen = new Set<string>();
        for (const name of names) {
          if (seen.has(name)) ctx.addIssue({ code: "custom", message: `${name} is named twice` });
          seen.add(name);
        }
      }),
    /**
     * A directory at $STATE_DIRECTORY that belongs to the service's name, not its hash: every
     * version of the service sees the same files (src/systemd/service-identity.ts).
     */
    stateDirectory: z.boolean().default(false),
  })
  .strict();

export type Manifest = z.infer<typeof manifestSchema>;

/**
 * A manifest as the state database kept it: rows written before a field existed lack it, and get
 * the field's default (what the schema would have given them).
 */
export function storedManifest(json: unknown): Manifest {
  const m = json as Manifest;
  return { ...m, credentials: m.credentials ?? [], stateDirectory: m.stateDirectory ?? false };
}

/** Parses and validates a manifest; the error names every wrong field by its path. */
export function parseManifest(input: unknown, source = "manifest"): Manifest {
  const result = manifestSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = zodProblems(result.error, "(top level)");
  throw new HashdError("bad_request", `invalid ${source}: ${problems.join("; ")}`, { problems });
}

export function parseManifestText(text: string, source = "manifest"): Manifest {
  if (text.length > MANIFEST_MAX_BYTES) {
    throw new HashdError("bad_request", `invalid ${source}: larger than ${MANIFEST_MAX_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HashdError("bad_request", `invalid ${source}: not JSON (${(e as Error).message})`);
  }
  return parseManifest(json, source);
}
