/**
 * The module's typed `settings` (nixos-module/default.nix) and the agent's config schema
 * (src/model/config.ts) agree. Both are walked:
 * - the same keys: every key the agent reads is an option, and every option is a key it reads;
 * - the same optionality: a key the agent may leave out is a nullable option (null = left out);
 * - the same values: for every key, probe values made from the schema (each bound and one past it,
 *   integers and fractions, strings of the wrong shape, wrong types, null) are given to the module
 *   through nixpkgs' lib.evalModules. Whatever the module accepts, the agent must accept as the
 *   module writes it (else a host evaluates and then fails at start), and it must be written as
 *   given. Whatever the module refuses, the agent must refuse too, except on the few keys where the
 *   module is narrower on purpose (NARROWER, with the reason);
 * - the same defaults, except the ingress (DEFAULT_DIFFERENCES, with the reason);
 * - the zone type takes exactly the zones src/model/names.ts's isZone takes (test/zone-probes.ts).
 * All probes run in one Nix evaluation (builtins.tryEval around each).
 */
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { configSchema } from "../src/model/config.ts";
import { isZone } from "../src/model/names.ts";
import { MODULE, NixosEvaluator, WITH_PACKAGE } from "./nixos/evaluate.ts";
import { nixpkgsLib, REPO } from "./nixos/nixpkgs-lib.ts";
import { ZONE_PROBES } from "./zone-probes.ts";

const LIB = nixpkgsLib("the module-versus-schema tests (test/nixos-module-schema.test.ts)");
const nixos = LIB ? new NixosEvaluator(LIB) : undefined;
const ev = () => nixos as NixosEvaluator;

/** Keys where the module refuses values the agent would take, and why. */
const NARROWER: Record<string, string> = {
  stateDir: "StateDirectory= makes it, so it must be under /var/lib",
  runtimeDir: "the unit's RuntimeDirectory=hashd is /run/hashd, so nothing else works (an assertion)",
  gcRootDir: "it goes into a tmpfiles rule and ReadWritePaths=: no spaces, %, or . and .. segments",
  "tls.certificateFile": "a plain path as the module's other files are: no spaces, %, or . and .. segments",
  "tls.keyFile": "a plain path as the module's other files are: no spaces, %, or . and .. segments",
};

/** Defaults that differ, and why. */
const DEFAULT_DIFFERENCES: Record<string, { module: unknown; agent: unknown; why: string }> = {
  ingress: {
    module: { address: "0.0.0.0", port: 80 },
    agent: { address: "127.0.0.1", port: 8480 },
    why: "a NixOS host is a server: every address, and port 80 so that http://<hash>.<zone>/ needs no port",
  },
};

/**
 * Keys the agent requires that the module declares nullable, and why: the module fills them from
 * another option, and an assertion (not a type error) says what to do when neither is set.
 */
const NULLABLE_DIFFERENCES: Record<string, string> = {
  "tls.certificateFile": "services.hashd.tls.useACMEHost sets it; an assertion asks for it otherwise",
  "tls.keyFile": "services.hashd.tls.useACMEHost sets it; an assertion asks for it otherwise",
};

const KEY = "/run/keys/hashd-cluster";
const CREDENTIAL = "/run/credentials/hashd.service/cluster-key";
/**
 * Every probe starts from a cluster member with HTTPS, so that the gossip and tls sections exist
 * (tls.port 0: no port of its own, so no probe of another port meets it).
 */
const BASE = `({ lib, ... }: { services.hashd = { enable = true; clusterKeyFile = "${KEY}"; settings.tls = lib.mapAttrs (_: lib.mkDefault) { certificateFile = "/etc/hashd/tls.pem"; keyFile = "/run/keys/hashd-tls.key"; port = 0; }; }; })`;

// ---------------------------------------------------------------------------------------------------
// The agent's schema, walked through zod 4's definitions.

// biome-ignore lint/suspicious/noExplicitAny: zod's internal definitions are untyped
type Zod = any;
const defOf = (schema: Zod) => schema._zod.def;

interface Field {
  path: string[];
  schema: Zod;
  /** may be left out (optional, or only in some variants of a union) */
  optional: boolean;
}

function unwrap(schema: Zod): { inner: Zod; optional: boolean } {
  let inner = schema;
  let optional = false;
  for (;;) {
    const def = defOf(inner);
    if (def.type === "optional") optional = true;
    else if (def.type !== "default") return { inner, optional };
    inner = def.innerType;
  }
}

function fieldsOf(schema: Zod, prefix: string[] = []): Field[] {
  const out: Field[] = [];
  for (const [key, value] of Object.entries(defOf(schema).shape as Record<string, Zod>)) {
    const { inner, optional } = unwrap(value);
    const path = [...prefix, key];
    out.push({ path, schema: inner, optional });
    const def = defOf(inner);
    if (def.type === "object") out.push(...fieldsOf(inner, path));
    if (def.type === "union") {
      // a discriminated union: its variants' fields, optional unless every variant has them
      const variants = (def.options as Zod[]).map((o) => fieldsOf(o, path));
      for (const f of variants.flat())
        if (!out.some((o) => o.path.join(".") === f.path.join(".")))
          out.push({
            ...f,
            optional: !variants.every((v) => v.some((g) => g.path.join(".") === f.path.join("."))),
          });
    }
  }
  return out;
}

interface Bounds {
  min?: number;
  max?: number;
  int?: boolean;
}

function boundsOf(schema: Zod): Bounds {
  const b: Bounds = {};
  for (const check of defOf(schema).checks ?? []) {
    const c = check._zod.def;
    if (c.check === "greater_than" || c.check === "min_length") b.min = c.value ?? c.minimum;
    if (c.check === "less_than" || c.check === "max_length") b.max = c.value ?? c.maximum;
    if (c.check === "number_format") b.int = true;
  }
  return b;
}

const STRINGS = [
  "",
  "x",
  "localhost",
  "svc.example.org",
  "Bad_Zone",
  "-a",
  "a..b",
  "user_1",
  "Root",
  "/",
  "/run/hashd",
  "/run/other",
  "/var/lib/hashd",
  "/var/lib/x/y",
  "/var/lib/../etc",
  "/srv/hashd",
  "relative/path",
  "10.0.0.2:7946",
  "with space",
];

function probeValues(schema: Zod): unknown[] {
  const def = defOf(schema);
  const b = boundsOf(schema);
  if (def.type === "string") {
    const lengths = b.max === undefined ? [] : ["a".repeat(b.max), "a".repeat(b.max + 1)];
    return [...STRINGS, ...lengths, 1, null];
  }
  if (def.type === "number") {
    const min = b.min ?? 0;
    const max = b.max ?? 1000;
    return [min - 1, min, min + 0.5, max, max + 1, String(min), true, null];
  }
  if (def.type === "array") return [[], ["x"], ["10.0.0.2:7946", "10.0.0.3:7946"], [""], "x", [1], null];
  // an enum (access.hashUrls): each value, another case, another word, a number
  if (def.type === "enum") return [...Object.values(def.entries as object), "Public", "", "x", 1, null];
  return [];
}

/** Whole values for a discriminated union: every variant, with its other fields probed. */
function unionProbes(schema: Zod): unknown[] {
  const def = defOf(schema);
  const out: unknown[] = [{}, { [def.discriminator]: "no-such-policy" }];
  for (const variant of def.options as Zod[]) {
    const shape = defOf(variant).shape as Record<string, Zod>;
    const tag = defOf(shape[def.discriminator]).values[0];
    const others = Object.keys(shape).filter((k) => k !== def.discriminator);
    out.push({ [def.discriminator]: tag });
    for (const key of others)
      for (const v of probeValues(unwrap(shape[key]).inner)) out.push({ [def.discriminator]: tag, [key]: v });
    // a field of another variant
    const foreign = (def.options as Zod[])
      .flatMap((o) => Object.keys(defOf(o).shape))
      .find((k) => k !== def.discriminator && !others.includes(k));
    if (foreign) out.push({ [def.discriminator]: tag, [foreign]: 1 });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The module's options and its verdicts.

interface OptionInfo {
  path: string[];
  type: string;
  nullable: boolean;
  readOnly: boolean;
}

const optionsExpr = `let
  subOf = t: if t.name == "submodule" then t.getSubOptions [ ]
    else if t.name == "nullOr" then subOf t.nestedTypes.elemType else null;
  walk = prefix: options: lib.concatLists (lib.mapAttrsToList (name: o:
    if lib.hasPrefix "_" name then [ ]
    else if !(lib.isOption o) then walk (prefix ++ [ name ]) o
    else
      let path = prefix ++ [ name ]; sub = subOf o.type; in
      [ { inherit path; type = o.type.description; nullable = o.type.name == "nullOr"; readOnly = o.readOnly or false; } ]
      ++ (if sub == null then [ ] else walk path sub)) options);
in walk [ ] (subOf sys.options.services.hashd.settings.type)`;

interface Probe {
  path: string[];
  value: unknown;
}
interface Verdict {
  ok: boolean;
  json?: string;
  failed?: string[];
}

/** The module's verdict on each probe: evaluation (types) and assertions, one Nix process. */
function moduleVerdicts(probes: Probe[]): Verdict[] {
  const file = path.join(ev().scratch, "probes.json");
  fs.writeFileSync(file, JSON.stringify(probes));
  return ev().raw<Verdict[]>(`let
    nixos = import ${REPO}/test/nixos/nixos.nix { inherit lib; };
    run = p:
      let
        c = (nixos { modules = [ ${MODULE} ${WITH_PACKAGE} ${BASE}
          (lib.setAttrByPath ([ "services" "hashd" "settings" ] ++ p.path) p.value) ]; }).config;
        out = {
          json = c.environment.etc."hashd/config.json".source.drvAttrs.value;
          failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
        };
        r = builtins.tryEval (builtins.deepSeq out out);
      in if r.success then r.value // { ok = true; } else { ok = false; };
  in map run (builtins.fromJSON (builtins.readFile ${file}))`);
}

const getPath = (o: unknown, p: string[]): unknown =>
  p.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o);
function setPath(o: Record<string, unknown>, p: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(o);
  let at = copy;
  // every parent is in the base config (the cluster member's has the gossip section)
  for (const k of p.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[p[p.length - 1] as string] = value;
  return copy;
}

describe.skipIf(!LIB)("the module's settings and the agent's config schema", () => {
  const fields = fieldsOf(configSchema);

  test("the same keys, and a key the agent may leave out is a nullable option", () => {
    const infos = ev().raw<OptionInfo[]>(`let
      nixos = import ${REPO}/test/nixos/nixos.nix { inherit lib; };
      sys = nixos { modules = [ ${MODULE} ${WITH_PACKAGE} ${BASE} ]; };
    in ${optionsExpr}`);
    const key = (p: string[]) => p.join(".");
    expect(infos.map((o) => key(o.path)).sort()).toEqual(fields.map((f) => key(f.path)).sort());
    const nullable = Object.fromEntries(infos.map((o) => [key(o.path), o.nullable]));
    const optional = Object.fromEntries(
      fields.map((f) => [key(f.path), f.optional || key(f.path) in NULLABLE_DIFFERENCES]),
    );
    expect(nullable).toEqual(optional);
    // the one option a user cannot set: the module fills it from clusterKeyFile
    expect(
      infos
        .filter((o) => o.readOnly)
        .map((o) => key(o.path))
        .sort(),
    ).toEqual(["credentials", "gossip.keyFile"]);
  });

  test("the same values: what the module accepts the agent accepts as written, and what it refuses the agent refuses", () => {
    const base = JSON.parse(ev().summary(BASE).json) as Record<string, unknown>;
    const probes: Probe[] = [];
    for (const f of fields) {
      const type = defOf(f.schema).type;
      // read-only: the module sets them (test/nixos-module.test.ts has the credentials' own probes)
      if (f.path.join(".") === "gossip.keyFile" || f.path.join(".") === "credentials") continue;
      if (type === "union") for (const value of unionProbes(f.schema)) probes.push({ path: f.path, value });
      else if (type !== "object" && type !== "literal")
        for (const value of probeValues(f.schema)) probes.push({ path: f.path, value });
    }
    expect(probes.length).toBeGreaterThan(200);
    const verdicts = moduleVerdicts(probes);
    const disagreements: string[] = [];
    probes.forEach(({ path: p, value }, i) => {
      const v = verdicts[i] as Verdict;
      const where = `${p.join(".")} = ${JSON.stringify(value)}`;
      if (v.ok && v.failed?.length === 0) {
        const written = JSON.parse(v.json as string);
        const parsed = configSchema.safeParse(written);
        if (!parsed.success)
          disagreements.push(`${where}: the module accepts it, the agent refuses what it writes`);
        const got = getPath(written, p);
        const given = value === null ? undefined : value;
        const asGiven =
          typeof given === "object" && given !== null && !Array.isArray(given)
            ? Object.entries(given).every(([k, x]) =>
                Bun.deepEquals((got as Record<string, unknown>)?.[k], x),
              )
            : Bun.deepEquals(got, given);
        if (!asGiven) disagreements.push(`${where}: written as ${JSON.stringify(got)}`);
      } else if (configSchema.safeParse(setPath(base, p, value)).success && !(p.join(".") in NARROWER)) {
        disagreements.push(`${where}: the agent accepts it, the module refuses it`);
      }
    });
    expect(disagreements).toEqual([]);
    // the probes reach both verdicts on every key
    for (const f of fields) {
      const mine = probes
        .map((p, i) => [p, verdicts[i] as Verdict] as const)
        .filter(([p]) => p.path === f.path);
      if (mine.length === 0) continue;
      expect({
        key: f.path.join("."),
        accepted: mine.some(([, v]) => v.ok && v.failed?.length === 0),
      }).toEqual({
        key: f.path.join("."),
        accepted: true,
      });
      expect({
        key: f.path.join("."),
        refused: mine.some(([, v]) => !v.ok || (v.failed?.length ?? 0) > 0),
      }).toEqual({
        key: f.path.join("."),
        refused: true,
      });
    }
  });

  test("the zone: the module takes exactly what src/model/names.ts takes", () => {
    const verdicts = moduleVerdicts(ZONE_PROBES.map((value) => ({ path: ["zone"], value })));
    expect(ZONE_PROBES.map((zone, i) => ({ zone, module: verdicts[i]?.ok === true }))).toEqual(
      ZONE_PROBES.map((zone) => ({ zone, module: isZone(zone) })),
    );
  });

  test("the same defaults, but for the ingress (see DEFAULT_DIFFERENCES)", () => {
    const alone = JSON.parse(ev().summary("{ services.hashd.enable = true; }").json);
    const clustered = JSON.parse(ev().summary(BASE).json);
    const agent = configSchema.parse({});
    // BASE's tls section has the module's defaults where it sets nothing (checkSec, redirectHttp)
    const agentClustered = configSchema.parse({
      gossip: { keyFile: CREDENTIAL },
      tls: { certificateFile: "/etc/hashd/tls.pem", keyFile: "/run/keys/hashd-tls.key", port: 0 },
    });
    for (const [key, d] of Object.entries(DEFAULT_DIFFERENCES)) {
      expect({ key, module: alone[key], agent: (agent as Record<string, unknown>)[key] }).toEqual({
        key,
        module: d.module,
        agent: d.agent,
      });
      delete alone[key];
      delete clustered[key];
      delete (agent as Record<string, unknown>)[key];
      delete (agentClustered as Record<string, unknown>)[key];
    }
    expect(alone).toEqual(agent);
    expect(clustered).toEqual(agentClustered);
  });
});
