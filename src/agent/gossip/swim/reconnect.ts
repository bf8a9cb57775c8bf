/**
 * Finding the cluster again (Serf's reconnect and retry-join; here in the core, so the agent and
 * the simulator run the same code). One timer:
 *
 * - about every `reconnectIntervalMs` (Serf's reconnect_interval, 30 s; each wait is drawn from
 *   0.5 to 1.5 times it), join (a) one random failed member, with Serf's odds (failed / alive, so
 *   the cluster as a whole tries each failed member about once per interval), and (b) one random
 *   seed that is not an alive or suspect member. A
 *   failed member is one dead in the table or reaped with its tombstone still kept, so it is
 *   forgotten after `tombstoneMs` (Serf's reconnect_timeout);
 * - while no other member is alive or suspect, every seed instead of one, and every `joinRetryMs`
 *   (the seeds may boot after us, or the whole cluster restarted at once; cluster.ts used to do
 *   this part).
 *
 * (a) heals a partition once each side has declared the other dead; (b) heals one where a whole
 * side restarted meanwhile, so neither side remembers the other, as long as the seeds span both.
 */

import { randomFloat, randomInt } from "../../../lib/prng.ts";
import type { Address, MemberStatus } from "../types.ts";
import type { NodeContext } from "./context.ts";
import { joinAddresses } from "./streams.ts";

/** (Re)start the timer: its first tick after `afterMs`. */
export const armReconnect = (ctx: NodeContext, afterMs: number): void => {
  ctx.reconnectToken = ctx.nextToken();
  ctx.schedule(afterMs, { kind: "reconnect", token: ctx.reconnectToken });
};

export const onReconnectTimer = (ctx: NodeContext, token: number): void => {
  if (token !== ctx.reconnectToken || ctx.leaving) return;
  const view: ReconnectView = {
    self: ctx.self.addr,
    members: ctx.members.all(),
    buried: [...ctx.members.buried()].map(([, t]) => t),
    seeds: ctx.seeds,
  };
  const plan = reconnectPlan(view, randomFloat(ctx.rng), (n) => randomInt(ctx.rng, n));
  // Members that started together must not reconnect in lockstep: the interval is drawn from
  // [0.5, 1.5) of the configured one (the same mean, so Serf's odds keep their meaning).
  const interval = ctx.config.reconnectIntervalMs;
  const next =
    plan.alone && ctx.seeds.size > 0 ? ctx.config.joinRetryMs : interval / 2 + randomInt(ctx.rng, interval);
  ctx.schedule(next, { kind: "reconnect", token });
  if (plan.join.length > 0) joinAddresses(ctx, plan.join);
};

/** What a reconnect tick looks at. */
export interface ReconnectView {
  self: Address;
  /** The member table, ourselves included. */
  members: Iterable<{ addr: Address; status: MemberStatus }>;
  /** Reaped members whose tombstone is still kept. */
  buried: Iterable<{ addr: Address; left: boolean }>;
  seeds: Iterable<Address>;
}

export interface ReconnectPlan {
  /** No other member is alive or suspect. */
  alone: boolean;
  /** Addresses to join now. */
  join: Address[];
}

/**
 * What one reconnect tick does. `odds` is a uniform draw in [0, 1) and `pick(n)` a uniform integer
 * in [0, n): the randomness is the caller's.
 */
export const reconnectPlan = (
  view: ReconnectView,
  odds: number,
  pick: (n: number) => number,
): ReconnectPlan => {
  const up = new Set<Address>();
  const down: Address[] = [];
  for (const m of view.members) {
    if (m.status === "alive" || m.status === "suspect") up.add(m.addr);
    else if (m.status === "dead") down.push(m.addr);
  }
  for (const t of view.buried) if (!t.left) down.push(t.addr);
  // an address an alive member has taken over (a restart under another name) is not failed
  const failed = [...new Set(down)].filter((a) => !up.has(a));
  const seeds = [...new Set(view.seeds)].filter((a) => a !== view.self && !up.has(a));
  const alone = ![...up].some((a) => a !== view.self);
  const join: Address[] = [];
  // Serf: failed / (members - failed - left); the alive count includes ourselves
  if (failed.length > 0 && odds < failed.length / Math.max(1, up.size))
    join.push(failed[pick(failed.length)] as Address);
  const untried = seeds.filter((a) => !join.includes(a));
  if (alone) join.push(...untried);
  else if (untried.length > 0) join.push(untried[pick(untried.length)] as Address);
  return { alone, join };
};
