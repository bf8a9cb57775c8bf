import type { Root } from "../../model/roots.ts";

/**
 * Which hashes are wanted: the roots (aliases, pins, retention policy) and, transitively, every
 * service hash a wanted hash references. References are Nix runtime references between service
 * closures, so they are facts about the hashes themselves and can be learned from any member.
 */
/** hash -> why it is wanted. Breadth-first, so each reason names the shortest chain. */
export function wantedHashes(
  roots: Iterable<Root>,
  refsOf: (hash: string) => Iterable<string>,
): Map<string, string> {
  const wanted = new Map<string, string>();
  const queue: string[] = [];
  for (const root of roots) {
    if (wanted.has(root.hash)) continue;
    wanted.set(root.hash, root.reason);
    queue.push(root.hash);
  }
  for (let i = 0; i < queue.length; i++) {
    const hash = queue[i] as string;
    for (const ref of refsOf(hash)) {
      if (ref === hash || wanted.has(ref)) continue;
      wanted.set(ref, `referenced by ${hash}`);
      queue.push(ref);
    }
  }
  return wanted;
}
