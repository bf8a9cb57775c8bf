import { readFile } from "node:fs/promises";
import { z } from "zod";
import { HashdError } from "../lib/errors.ts";
import { zodProblems } from "../lib/zod-problems.ts";
import { PREVIOUS_TARGETS_PER_ALIAS } from "./alias-record.ts";
import {
  CREDENTIAL_NAME,
  CREDENTIALS_MAX,
  EXPECTED_ALIAS,
  EXPECTED_CREDENTIAL_NAME,
  EXPECTED_PLAIN_PATH,
  EXPECTED_SERVICE_NAME,
  EXPECTED_ZONE,
  isAliasName,
  PLAIN_PATH,
  SERVICE_NAME,
  ZONE_MAX_LENGTH,
  ZONE_SYNTAX,
} from "./names.ts";

const listen = z.object({
  address: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535),
});

/** How many services a host may map credentials for. */
export const CREDENTIAL_SERVICES_MAX = 1024;

/**
 * Where a credential's value is on this host: a file systemd reads when the service starts
 * (LoadCredential=; a name ending in `.cred` is a `systemd-creds encrypt` file, LoadCredentialEncrypted=).
 * Spliced into the unit as it is, so plain (PLAIN_PATH). Not in the Nix store (readable by every
 * user), and not in /tmp or /var/tmp: the agent checks the file before it activates, and with the
 * NixOS unit's PrivateTmp= it would look at another /tmp than systemd reads.
 */
const credentialPath = z
  .string()
  .max(1024)
  .regex(PLAIN_PATH, `must be ${EXPECTED_PLAIN_PATH}`)
  .refine((p) => !p.startsWith("/nix/store/"), {
    message: "is in the Nix store, where every user can read it: keep secrets outside the store",
  })
  .refine((p) => !/^\/(var\/)?tmp\//.test(p), {
    message:
      "is in /tmp or /var/tmp, which the agent (PrivateTmp=) sees apart from systemd: use /run/keys or /etc",
  });

/** credentials.<service name>.<credential name> = path */
const credentialsSchema = z
  .record(
    z.string().regex(SERVICE_NAME, `service names must be ${EXPECTED_SERVICE_NAME}`),
    z
      .record(
        z.string().regex(CREDENTIAL_NAME, `credential names must be ${EXPECTED_CREDENTIAL_NAME}`),
        credentialPath,
      )
      .refine((m) => Object.keys(m).length <= CREDENTIALS_MAX, {
        message: `at most ${CREDENTIALS_MAX} credentials per service`,
      }),
  )
  .refine((m) => Object.keys(m).length <= CREDENTIAL_SERVICES_MAX, {
    message: `at most ${CREDENTIAL_SERVICES_MAX} services`,
  });

/**
 * Who may reach a hash URL (`http://<hash>.<zone>/`, `/h/<hash>/`); alias URLs are always public.
 * `public`: anyone; `aliased`: only hashes an alias points at now, others with the bypass token;
 * `token`: every hash URL needs the bypass token. Processes on the host itself (services calling
 * through HASHD_INGRESS) and proven hops from members are always let through (ingress/access.ts).
 */
export const HASH_URL_ACCESS = ["public", "aliased", "token"] as const;
export type HashUrlAccess = (typeof HASH_URL_ACCESS)[number];

/** access: private previews. The token's file follows the rules of credential files (credentialPath). */
const accessSchema = z
  .object({
    /** default: public for a host that runs alone (no gossip section), aliased in a cluster */
    hashUrls: z.enum(HASH_URL_ACCESS).optional(),
    /** the bypass token (x-hashd-bypass, ?hashd-bypass=, its cookie), read at start and when it changes */
    bypassTokenFile: credentialPath.optional(),
  })
  .strict();

/** The agent's configuration: a JSON file (written by the NixOS module) plus CLI overrides. */
export const configSchema = z
  .object({
    stateDir: z.string().startsWith("/").default("/var/lib/hashd"),
    /** holds control.sock (root only) and sockets/<hash>.sock of every service */
    runtimeDir: z.string().startsWith("/").default("/run/hashd"),
    gcRootDir: z.string().startsWith("/").default("/nix/var/nix/gcroots/hashd"),
    zone: z.string().max(ZONE_MAX_LENGTH).regex(ZONE_SYNTAX, `must be ${EXPECTED_ZONE}`).default("localhost"),
    /** where `activate` copies missing closures from (binary cache URLs, ssh-ng://host) */
    substituters: z.array(z.string().min(1)).default([]),
    ingress: listen.default({ address: "127.0.0.1", port: 8480 }),
    status: listen.default({ address: "127.0.0.1", port: 8481 }),
    /**
     * HTTPS on every hash URL: a TLS listener beside the plain ingress with one wildcard
     * certificate for *.<zone> and <zone> (ingress/tls.ts). The files are read at start (missing or
     * broken: the agent does not start) and again when they change (ACME renewals).
     */
    tls: z
      .object({
        /** PEM: the certificate, then its chain (ACME's fullchain.pem) */
        certificateFile: z.string().startsWith("/"),
        /** PEM private key of that certificate */
        keyFile: z.string().startsWith("/"),
        /** default: the ingress address */
        address: z.string().min(1).optional(),
        port: z.number().int().min(0).max(65535).default(443),
        /** 308 from http:// to https://, except for this host's own clients and members' hops */
        redirectHttp: z.boolean().default(false),
        /** how often the files are checked for a change, in seconds */
        checkSec: z.number().positive().max(86_400).default(10),
      })
      .strict()
      .optional(),
    gossip: z
      .object({
        /** UDP packets and TCP push-pull streams, on every address of the host */
        port: z.number().int().min(0).max(65535).default(7946),
        address: z.string().min(1).default("0.0.0.0"),
        /** address peers reach this host at (default: its first non-loopback IPv4 address) */
        advertise: z.string().min(1).optional(),
        /** "host:port" of members to join through */
        seeds: z.array(z.string().min(1)).default([]),
        /** keyring file: one base64 32-byte key per line, the first seals (see docs/gossip.md) */
        keyFile: z.string().startsWith("/").optional(),
        /** this member's name (default: the host name) */
        name: z.string().min(1).max(253).optional(),
      })
      .strict()
      .optional(),
    /**
     * What happens to a hash that no alias, pin or wanted hash reaches any more: retire it (stop,
     * drop its GC root), keep it forever scaled to zero, or keep the last `count` of each alias.
     */
    retention: z
      .discriminatedUnion("policy", [
        z.object({ policy: z.literal("retire") }).strict(),
        z.object({ policy: z.literal("keep") }).strict(),
        // an alias record carries up to PREVIOUS_TARGETS_PER_ALIAS previous targets: at most 1 + that
        z
          .object({
            policy: z.literal("keep-last"),
            count: z
              .number()
              .int()
              .min(1)
              .max(PREVIOUS_TARGETS_PER_ALIAS + 1),
          })
          .strict(),
      ])
      .default({ policy: "retire" }),
    /** seconds an unwanted hash must be idle and unreferenced on every member before it stops */
    quietSec: z.number().min(0).max(86_400).default(10),
    /** run services as this user instead of a DynamicUser */
    serviceUser: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*$/)
      .optional(),
    /** default readiness wait of `activate --wait` */
    readyTimeoutSec: z.number().int().min(1).max(3600).default(120),
    /**
     * The files of the credentials a service's manifest names, by service name then credential
     * name. A service this host does not run needs no entry; a manifest that names a credential
     * missing here is refused at activation.
     */
    credentials: credentialsSchema.default({}),
    /** private previews: who may reach hash URLs, and the bypass token's file */
    access: accessSchema.default({}),
    /**
     * Skew protection: an alias response sets `hashd-<alias>=<hash>` (HttpOnly, SameSite=Lax) and a
     * request that carries it stays on that hash while it runs anywhere (ingress/sticky.ts).
     */
    sticky: z
      .object({
        /** the cookie's Max-Age in seconds; 0 sets and follows no cookie */
        maxAgeSec: z.number().int().min(0).max(31_536_000).default(3600),
        /** aliases whose responses set no cookie (API aliases, say) */
        disable: z
          .array(z.string().refine(isAliasName, `must be ${EXPECTED_ALIAS}`))
          .max(1024)
          .default([]),
      })
      .strict()
      .default({ maxAgeSec: 3600, disable: [] }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/** The access mode of hash URLs: as configured, else public alone and aliased in a gossip cluster. */
export function hashUrlAccess(config: Pick<Config, "access" | "gossip">): HashUrlAccess {
  return config.access.hashUrls ?? (config.gossip === undefined ? "public" : "aliased");
}

export interface Paths {
  controlSocket: string;
  /** the holds API for services (any local process may connect) */
  serviceSocket: string;
  socketDir: string;
  database: string;
}

export function pathsOf(config: Config): Paths {
  return {
    controlSocket: `${config.runtimeDir}/control.sock`,
    serviceSocket: `${config.runtimeDir}/service.sock`,
    socketDir: `${config.runtimeDir}/sockets`,
    database: `${config.stateDir}/state.sqlite`,
  };
}

export function parseConfig(input: unknown, source = "config"): Config {
  const r = configSchema.safeParse(input);
  if (r.success) return r.data;
  const problems = zodProblems(r.error, "(top level)");
  throw new HashdError("bad_request", `invalid ${source}: ${problems.join("; ")}`, { problems });
}

export async function loadConfig(
  file: string | undefined,
  overrides: Record<string, unknown>,
): Promise<Config> {
  let base: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new HashdError("bad_request", `cannot read config ${file}: ${(e as Error).message}`);
    }
    try {
      base = JSON.parse(text);
    } catch (e) {
      throw new HashdError("bad_request", `invalid config ${file}: not JSON (${(e as Error).message})`);
    }
  }
  const merged = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  return parseConfig(merged, file ?? "config");
}
