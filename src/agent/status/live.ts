/**
 * Live updates as diffs. One open page (one SSE stream) keeps what it was last sent: every block's
 * markup by key and every moving number by key. A new snapshot becomes
 *   - a "patch": the blocks whose markup changed (numbers blanked out before comparing), and the
 *     order of a container whose keys changed; the page swaps those elements only, and
 *   - a "load": the moving numbers (in flight, holds, last contact) that changed, written into
 *     their elements in place.
 * Under traffic only loads flow; nothing the reader opened, scrolled or filtered is touched.
 */
import { type Blocks, CONTAINERS } from "./render.ts";

export interface Patch {
  /** key → the block's new markup */
  set: Record<string, string>;
  /** container id → its keys in order (only containers whose keys changed) */
  order: Record<string, string[]>;
}

export type Loads = Record<string, string>;

const LOAD = /<span data-load="([^"]*)">([^<]*)<\/span>/g;

/** A block's markup without its moving numbers: what decides whether it changed. */
export const structural = (markup: string): string => markup.replace(LOAD, '<span data-load="$1"></span>');

const UNESCAPE: Record<string, string> = {
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&#39;": "'",
};
const decodeEntities = (text: string) =>
  text.replace(/&(amp|lt|gt|quot|#39);/g, (e) => UNESCAPE[e] as string);

/** Every moving number in some markup, by key, as plain text (the page sets it as textContent). */
export function loadsOf(markup: string, into: Loads = {}): Loads {
  for (const m of markup.matchAll(LOAD))
    into[decodeEntities(m[1] as string)] = decodeEntities(m[2] as string);
  return into;
}

export class LiveDiff {
  private blocks = new Map<string, string>();
  private orders = new Map<string, string>();
  private loads: Loads = {};

  /** What to send for `next`; the first call sends everything. */
  next(next: Blocks): { patch: Patch | null; loads: Loads | null } {
    const set: Record<string, string> = {};
    const order: Record<string, string[]> = {};
    const seen = new Map<string, string>();
    const loads: Loads = {};
    for (const id of CONTAINERS) {
      const list = next[id] ?? [];
      const keys = list.map((b) => b.key);
      const joined = keys.join("\n");
      if (this.orders.get(id) !== joined) order[id] = keys;
      this.orders.set(id, joined);
      for (const b of list) {
        const shape = structural(b.html);
        seen.set(b.key, shape);
        if (this.blocks.get(b.key) !== shape) set[b.key] = b.html;
        loadsOf(b.html, loads);
      }
    }
    this.blocks = seen;
    const changed: Loads = {};
    for (const [k, v] of Object.entries(loads)) if (this.loads[k] !== v) changed[k] = v;
    this.loads = loads;
    const patch = Object.keys(set).length || Object.keys(order).length ? { set, order } : null;
    // numbers inside a block sent whole arrive with it
    for (const b of Object.values(set)) for (const k of Object.keys(loadsOf(b))) delete changed[k];
    return { patch, loads: Object.keys(changed).length ? changed : null };
  }
}
