/**
 * 410 Gone: a hash URL whose version a member retired (as a deleted deployment answers on Vercel).
 * The body says when, and where the aliases that pointed at the hash point now. It is built from
 * what the agent holds (store hashes, alias names, a time), never from the request: the hash was
 * checked as a store hash by the router, alias names are DNS labels, and the JSON goes through
 * JSON.stringify.
 */

/** Aliases listed in a 410 (the newest writes first); the body stays small. */
export const GONE_ALIASES_MAX = 8;

export interface GoneInfo {
  hash: string;
  /** ms; for a hash retired on another member, when this member first heard of it */
  retiredAt: number;
  /** retired by `hashd deactivate`, not by the retirer */
  byHand: boolean;
  /** aliases that pointed at the hash, each with its target now (null: the alias was removed) */
  aliases: readonly { name: string; hash: string | null }[];
}

export interface GoneBody {
  contentType: string;
  text: string;
}

/** JSON when the client's Accept names application/json, else plain text. */
export function goneBody(info: GoneInfo, zone: string, accept: string | undefined): GoneBody {
  const at = new Date(info.retiredAt).toISOString();
  const aliases = info.aliases.slice(0, GONE_ALIASES_MAX);
  if (accept !== undefined && /application\/json/i.test(accept)) {
    const body = {
      error: "gone",
      hash: info.hash,
      retiredAt: at,
      reason: info.byHand ? "deactivated" : "retired",
      aliases: aliases.map((a) => ({
        name: a.name,
        url: `http://${a.name}.${zone}/`,
        hash: a.hash,
        hashUrl: a.hash === null ? null : `http://${a.hash}.${zone}/`,
      })),
    };
    return { contentType: "application/json", text: `${JSON.stringify(body)}\n` };
  }
  const lines = [`hash ${info.hash} was ${info.byHand ? "deactivated" : "retired"} at ${at}.`];
  for (const a of aliases)
    lines.push(
      a.hash === null
        ? `alias ${a.name} pointed at it; it no longer exists.`
        : `alias ${a.name} pointed at it; http://${a.name}.${zone}/ is now http://${a.hash}.${zone}/`,
    );
  return { contentType: "text/plain; charset=utf-8", text: `${lines.join("\n")}\n` };
}
