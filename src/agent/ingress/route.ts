import type { AliasRoute } from "../../model/alias-route.ts";
import { EXPECTED_HASH, isStoreHash } from "../../model/names.ts";
import { classifyName } from "../aliases/resolve.ts";
import type { AliasResolver } from "./types.ts";

/**
 * Which hash a request is for, decided from its Host and request-target alone (no sockets, no route
 * table). Order and why:
 * 1. A peer ingress that forwards a request names the hash it resolved (x-hashd-hash beside the hop
 *    header), so an alias switch racing the hop cannot send it to another version.
 * 2. Host `<hash>.<zone>` or `<alias>.<zone>`: the service owns its whole path space, so a service's
 *    own `/h/...` URLs are never captured by the prefix form below.
 * 3. Path `/h/<hash>/...` on any other Host (an IP, the bare zone, a name we don't serve): the prefix
 *    is stripped and reported in X-Forwarded-Prefix.
 * A Host outside the zone with no /h/ prefix gets 421 (RFC 9110 15.5.20: this server is not
 * configured to answer for that authority).
 */
export interface TargetInput {
  /** the Host header as received, undefined when missing */
  host: string | undefined;
  /** the request-target as received (origin-form: path and query) */
  target: string;
  /** the hash named by a forwarding peer ingress (only when the hop header is present) */
  hopHash?: string | undefined;
}

export type Routing =
  | {
      ok: true;
      hash: string;
      via: "hop" | "host" | "alias" | "path";
      path: string;
      prefix: string | undefined;
      /** via "alias": its name and targets (the hash above is its heaviest; sticky.ts picks) */
      alias?: { name: string; route: AliasRoute };
    }
  | { ok: false; status: 400 | 404 | 421; message: string }
  | { ok: false; status: 308; message: string; location: string };

const HOST_SYNTAX = /^[a-z0-9.-]{1,253}(?::[0-9]{1,5})?$/;
/**
 * A `.` or `..` segment, plain or percent-encoded, also with Tomcat-style `;params`. Refused rather
 * than normalized: the ingress routes by path prefix and the service parses the path again; if the
 * two normalized differently, `/h/<a>/../<b>` could mean one thing here and another there. Browsers
 * and curl remove dot segments before sending (RFC 3986 5.2.4), so only hand-made requests hit this.
 */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:[/;]|$)/i;

export function routeTarget(input: TargetInput, zone: string, aliases: AliasResolver): Routing {
  const { target } = input;
  if (target.charCodeAt(0) !== 47 /* / */) return bad("request-target must be a path starting with /");
  const query = target.indexOf("?");
  const path = query < 0 ? target : target.slice(0, query);
  if (DOT_SEGMENT.test(path)) return bad("path contains a . or .. segment; resolve it before sending");

  if (input.hopHash !== undefined) {
    if (!isStoreHash(input.hopHash))
      return bad(`malformed x-hashd-hash from peer (expected ${EXPECTED_HASH})`);
    const prefix = `/h/${input.hopHash}`;
    if (target.startsWith(`${prefix}/`)) return ok(input.hopHash, "hop", target.slice(prefix.length), prefix);
    return ok(input.hopHash, "hop", target, undefined);
  }

  const host = parseHost(input.host, zone);
  if (host.kind === "bad") return bad(host.message);
  if (host.kind === "label") {
    const { label } = host;
    const name = classifyName(label);
    switch (name.kind) {
      case "hash":
        return ok(name.hash, "host", target, undefined);
      case "bad-hash":
        return bad(`malformed hash in Host: ${label} (expected ${EXPECTED_HASH})`);
      case "bad-name":
        return bad(`malformed name in Host: ${label}`);
      case "alias": {
        const route = aliases.resolveAlias(name.alias);
        if (route === undefined)
          return { ok: false, status: 404, message: `no alias named ${label} in ${zone}` };
        return {
          ok: true,
          hash: route.hash,
          via: "alias",
          path: target,
          prefix: undefined,
          alias: { name: name.alias, route },
        };
      }
    }
  }

  if (target.startsWith("/h/")) return routePrefix(target);
  if (host.kind === "foreign") {
    return {
      ok: false,
      status: 421,
      message: `host ${host.name} is not in zone ${zone}: use http://<hash>.${zone}/ or a /h/<hash>/ path`,
    };
  }
  return {
    ok: false,
    status: 404,
    message: `this is the hashd ingress of ${zone}: ask for http://<hash>.${zone}/, http://<alias>.${zone}/ or /h/<hash>/`,
  };
}

export function notLiveMessage(hash: string): string {
  return `hash ${hash} is not live on any member`;
}

type ParsedHost =
  | { kind: "label"; label: string }
  | { kind: "zone" }
  | { kind: "foreign"; name: string }
  | { kind: "bad"; message: string };

export function parseHost(raw: string | undefined, zone: string): ParsedHost {
  // HTTP/1.0 may omit Host (HTTP/1.1 requests without one were refused by the parser)
  if (raw === undefined) return { kind: "zone" };
  if (raw === "") return { kind: "bad", message: "empty Host header" };
  let host = raw.toLowerCase();
  if (host.charCodeAt(0) === 91 /* [ */) return { kind: "foreign", name: host }; // IPv6 literal
  if (!HOST_SYNTAX.test(host))
    return { kind: "bad", message: `malformed Host header: ${JSON.stringify(raw.slice(0, 80))}` };
  const colon = host.indexOf(":");
  if (colon >= 0) host = host.slice(0, colon);
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host === zone) return { kind: "zone" };
  const dot = host.length - zone.length - 1; // where ".<zone>" starts, tested without building it
  if (dot < 0 || host.charCodeAt(dot) !== 46 || !host.endsWith(zone)) return { kind: "foreign", name: host };
  const label = host.slice(0, dot);
  if (label.includes("."))
    return { kind: "bad", message: `host ${host} has more than one label before ${zone}` };
  return { kind: "label", label };
}

function routePrefix(target: string): Routing {
  let end = 3;
  while (end < target.length && target[end] !== "/" && target[end] !== "?") end++;
  const hash = target.slice(3, end);
  if (!isStoreHash(hash)) {
    return bad(`malformed hash in path: ${JSON.stringify(hash.slice(0, 80))} (expected ${EXPECTED_HASH})`);
  }
  const prefix = `/h/${hash}`;
  if (target[end] !== "/") {
    // `/h/<hash>` without the slash: redirect so that relative links in the page resolve under it
    const location = `${prefix}/${target.slice(end)}`;
    return { ok: false, status: 308, message: `see ${location}`, location };
  }
  return ok(hash, "path", target.slice(end), prefix);
}

function ok(
  hash: string,
  via: "hop" | "host" | "alias" | "path",
  path: string,
  prefix: string | undefined,
): Routing {
  return { ok: true, hash, via, path, prefix };
}

function bad(message: string): Routing {
  return { ok: false, status: 400, message };
}
