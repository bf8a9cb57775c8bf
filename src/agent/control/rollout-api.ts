import { Hono } from "hono";
import { z } from "zod";
import { HashdError } from "../../lib/errors.ts";
import type { AliasRecord } from "../../model/alias-record.ts";
import { describeRollout, type Judgement, startGuard, startRollout, stepName } from "../../model/rollout.ts";
import { isActiveRollout, type RolloutLimits, type RolloutState } from "../../model/rollout-state.ts";
import { parseStoreHash } from "../../nix/store-path.ts";
import type { AliasService } from "../aliases/alias-service.ts";
import { parseAliasName } from "../aliases/names.ts";
import { rolloutWrite } from "../rollout/driver.ts";
import { readJson } from "./read-json.ts";

const limits = {
  intervalMs: z.number().optional(),
  maxErrorRate: z.number().optional(),
  maxP99Ratio: z.number().optional(),
  minRequests: z.number().int().optional(),
};
const startBody = z
  .object({
    to: z.string(),
    steps: z.array(z.number().int()).max(10).optional(),
    stepTimeMs: z.number().optional(),
    ...limits,
  })
  .strict();
const guardBody = z
  .object({ name: z.string(), to: z.string(), watchMs: z.number().optional(), ...limits })
  .strict();

/** The limits a start asked for; startRollout and startGuard keep the defaults for the ones left out. */
const limitsOf = (b: Partial<RolloutLimits>): Partial<RolloutLimits> => ({
  maxErrorRate: b.maxErrorRate,
  maxP99Ratio: b.maxP99Ratio,
  minRequests: b.minRequests,
});

export interface RolloutApiDeps {
  aliases: AliasService;
  /** whether a hash runs somewhere (a canary must, before traffic goes to it) */
  isLive: (hash: string) => boolean;
  /** the driver's last judgement of a rollout, on the member that drives it */
  lastJudgement?: (alias: string, state: RolloutState) => Judgement | undefined;
  now?: () => number;
}

/** What `hashd rollout status` shows of one alias. */
export interface RolloutView {
  alias: string;
  rollout: RolloutState;
  /** the alias's weights now */
  split: { hash: string; weight: number }[];
  summary: string;
  judgement?: Judgement;
}

/**
 * Staged rollouts and guarded switches on the control API (mounted under /v1): each command is one
 * alias write that carries the new weights and the rollout's state (the driving member, whichever
 * it is, reads it from the replicated record: agent/rollout/driver.ts).
 */
export function rolloutApi(deps: RolloutApiDeps): Hono {
  const app = new Hono();
  const { aliases } = deps;
  const now = deps.now ?? Date.now;

  const view = (r: AliasRecord & { rollout: RolloutState }): RolloutView => {
    const out: RolloutView = {
      alias: r.name,
      rollout: r.rollout,
      split: r.split ?? (r.hash === null ? [] : [{ hash: r.hash, weight: 100 }]),
      summary: describeRollout(r.rollout, now()),
    };
    const j = deps.lastJudgement?.(r.name, r.rollout);
    if (j !== undefined) out.judgement = j;
    return out;
  };
  const withRollout = (name: string): AliasRecord & { rollout: RolloutState } => {
    const r = aliases.recordOf(parseAliasName(name));
    if (r === undefined || r.hash === null) throw new HashdError("not_found", `alias ${name} does not exist`);
    if (r.rollout === undefined) throw new HashdError("not_found", `alias ${name} has no rollout`);
    return r as AliasRecord & { rollout: RolloutState };
  };
  /** Writes the alias's value for `state` with it; answers the new view. */
  const write = (name: string, state: RolloutState): RolloutView => {
    const { hash, split } = rolloutWrite(state);
    aliases.write([{ name, hash, ...(split === undefined ? {} : { split }), rollout: state }]);
    return view(withRollout(name));
  };
  /**
   * The rollout or guard to `to` the alias is in already: starting it again answers it (200), so
   * `hashd deploy --rollout` may start it from every target of one cluster at once.
   */
  const sameRunning = (name: string, to: string, kind: RolloutState["kind"]): RolloutView | undefined => {
    const r = aliases.recordOf(name);
    if (r === undefined || r.hash === null || !isActiveRollout(r.rollout)) return undefined;
    return r.rollout.to === to && r.rollout.kind === kind
      ? view(r as AliasRecord & { rollout: RolloutState })
      : undefined;
  };
  /** The baseline a new rollout or guard starts from: the alias's one hash, with no rollout under way. */
  const baselineOf = (name: string, to: string): string => {
    const r = aliases.recordOf(name);
    if (r === undefined || r.hash === null)
      throw new HashdError(
        "not_found",
        `alias ${name} does not exist: set it first (hashd alias set ${name}=<hash>)`,
      );
    if (isActiveRollout(r.rollout))
      throw new HashdError(
        "conflict",
        `alias ${name} is in a ${r.rollout.kind} (${r.rollout.status}); abort or promote it first`,
      );
    if (r.split !== undefined)
      throw new HashdError("conflict", `alias ${name} is split between hashes; set it to one hash first`);
    if (r.hash === to) throw new HashdError("conflict", `alias ${name} already points at ${to}`);
    if (!deps.isLive(to))
      throw new HashdError("conflict", `${to} is not live on any member: activate it first`);
    return r.hash;
  };

  app.get("/rollouts", (c) => {
    const rollouts = aliases
      .records()
      .filter((r): r is AliasRecord & { rollout: RolloutState } => r.hash !== null && r.rollout !== undefined)
      .map(view);
    return c.json({ rollouts });
  });

  app.get("/rollouts/:name", (c) => c.json(view(withRollout(c.req.param("name")))));

  app.post("/rollouts/:name", async (c) => {
    const name = parseAliasName(c.req.param("name"));
    const body = await readJson(c.req.raw, startBody);
    const to = parseStoreHash(body.to);
    const same = sameRunning(name, to, "rollout");
    if (same !== undefined) return c.json(same);
    const state = startRollout({
      from: baselineOf(name, to),
      to,
      now: now(),
      steps: body.steps,
      stepTimeMs: body.stepTimeMs,
      intervalMs: body.intervalMs,
      limits: limitsOf(body),
    });
    return c.json(write(name, state), 201);
  });

  app.post("/guards", async (c) => {
    const body = await readJson(c.req.raw, guardBody);
    const name = parseAliasName(body.name);
    const to = parseStoreHash(body.to);
    const same = sameRunning(name, to, "guard");
    if (same !== undefined) return c.json(same);
    const state = startGuard({
      from: baselineOf(name, to),
      to,
      now: now(),
      watchMs: body.watchMs,
      intervalMs: body.intervalMs,
      limits: limitsOf(body),
    });
    return c.json(write(name, state), 201);
  });

  const byHand = (action: "pause" | "resume" | "promote" | "abort") =>
    app.post(`/rollouts/:name/${action}`, (c) => {
      const r = withRollout(c.req.param("name"));
      const s = r.rollout;
      const at = stepName(s, s.step);
      const need = (ok: boolean, what: string) => {
        if (!ok)
          throw new HashdError("conflict", `the ${s.kind} of ${r.name} is ${s.status}: cannot ${what} it`);
      };
      let next: RolloutState;
      switch (action) {
        case "pause":
          need(s.status === "running", "pause");
          next = { ...s, status: "paused", note: `paused by hand at ${at}` };
          break;
        case "resume":
          need(s.status === "paused", "resume");
          next = { ...s, status: "running", stepSince: now(), note: `resumed by hand at ${at}` };
          break;
        case "promote":
          need(isActiveRollout(s), "promote");
          next = { ...s, status: "done", step: s.steps.length - 1, note: `promoted by hand at ${at}` };
          break;
        case "abort":
          need(isActiveRollout(s), "abort");
          next = { ...s, status: "aborted", note: `aborted by hand at ${at}` };
          break;
      }
      return c.json(write(r.name, next));
    });
  byHand("pause");
  byHand("resume");
  byHand("promote");
  byHand("abort");

  return app;
}
