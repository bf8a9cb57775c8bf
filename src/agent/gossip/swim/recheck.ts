/**
 * The end of a suspicion. memberlist declares a suspect dead when its suspicion timer fires. We
 * do too, but only after one last full probe of it (ping, then ping-req through helpers and the
 * TCP fallback, with the suspicion piggybacked), started one probe interval before the deadline
 * so that it costs no time on a real failure (membership.ts scheduleSuspicion):
 *
 * - a member that refuted, but whose refutation gossip never brought us, answers with its new
 *   incarnation in the ack: alive (probe.ts settles an answered recheck at once);
 * - a member that is up but unaware learns of the suspicion from the ping itself and refutes;
 * - only a member that stays silent through the whole probe is declared dead, at the deadline.
 *
 * Under 10% loss gossip alone now and then fails to bring a refutation to every member before
 * its timer runs out (measured: ~3 false deaths per 10 minutes at 100 members); the recheck
 * removes those.
 */
import type { NodeContext } from "./context.ts";
import { declareDead, recheckLead, scheduleSuspicion } from "./membership.ts";
import { startProbe, unansweredProbeHealth } from "./probe.ts";

export const onSuspicionTimer = (ctx: NodeContext, name: string, token: number): void => {
  const m = ctx.members.get(name);
  const s = m?.suspicion;
  if (m === undefined || s === undefined || s === null || s.token !== token) return;
  const r = s.recheck;
  if (r.phase === "due" && !ctx.leaving) {
    const p = startProbe(ctx, m, "recheck");
    ctx.rechecks.set(p.seq, p);
    s.recheck = { phase: "running", seq: p.seq, endsAt: ctx.now + recheckLead(ctx) };
    scheduleSuspicion(ctx, m);
    return;
  }
  if (r.phase === "running") {
    // Its window is over and no ack came (an answered recheck is settled when the ack arrives).
    const p = ctx.rechecks.get(r.seq);
    ctx.rechecks.delete(r.seq);
    if (p !== undefined) unansweredProbeHealth(ctx, p);
    s.recheck = { phase: "unanswered" };
  }
  if (ctx.now < s.deadline()) {
    scheduleSuspicion(ctx, m);
    return;
  }
  declareDead(ctx, m);
};
