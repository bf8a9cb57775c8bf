/**
 * Roots of the wanted set: what keeps a hash running (an alias, a pin, the retention policy). The
 * alias service makes them, the retirement planner walks from them (agent/retirement/wanted.ts).
 */

export interface Root {
  hash: string;
  /** e.g. "alias prod", "pinned", "kept: last 3 of alias prod" */
  reason: string;
}

/**
 * A hash an alias or pin pointed at before its latest write (the previous targets its winning
 * record carries), with that write's time: a copy deployed here before then was wanted, even if
 * this host never saw the alias point at it (it was down, cut off, or the alias moved on fast).
 */
export interface FormerRoot extends Root {
  until: number;
}
