import { describe, expect, test } from "bun:test";
import type { DeploymentState } from "../../model/deployment.ts";
import { effectOf, needsServiceState } from "./effects.ts";
import type { Action } from "./planner.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const act = (kind: Action["kind"]): Action => ({ kind, hash: H, reason: "why" });
const at = (state: DeploymentState) => ({ state });

describe("what each planner action does to a deployment", () => {
  test.each([
    ["wanted", "ready", false, { kind: "mark-wanted", reason: "wanted: why" }],
    [
      "drain",
      "idle",
      false,
      { kind: "transition", to: "draining", from: "idle", reason: "why", stop: "nothing" },
    ],
    [
      "drain",
      "activating",
      false,
      { kind: "transition", to: "draining", from: "activating", reason: "why", stop: "nothing" },
    ],
    [
      "undrain",
      "draining",
      true,
      { kind: "transition", to: "ready", from: "draining", reason: "why", stop: "nothing" },
    ],
    [
      "undrain",
      "draining",
      false,
      { kind: "transition", to: "idle", from: "draining", reason: "why", stop: "nothing" },
    ],
    [
      "scale-to-zero",
      "ready",
      false,
      { kind: "transition", to: "idle", from: "ready", reason: "why", stop: "service" },
    ],
    [
      "retire",
      "draining",
      false,
      { kind: "transition", to: "retired", from: "draining", reason: "why", stop: "units-and-gc-root" },
    ],
  ] as const)("%s from %s (service running: %p)", (kind, state, active, effect) => {
    expect(effectOf(at(state), act(kind), active)).toEqual(effect);
  });

  test("retire is guarded by draining: the store refuses it from any other state", () => {
    expect(effectOf(at("ready"), act("retire"), false)).toMatchObject({ from: "draining", to: "retired" });
  });

  test.each(["retired", "failed", "fetching"] as const)("nothing happens to a %s deployment", (state) => {
    for (const kind of ["wanted", "drain", "undrain", "scale-to-zero", "retire"] as const)
      expect(effectOf(at(state), act(kind), true)).toBeNull();
    expect(effectOf(undefined, act("retire"), true)).toBeNull();
  });

  test("revive activates a retired deployment again, and nothing else", () => {
    expect(effectOf(at("retired"), act("revive"), false)).toEqual({ kind: "activate", reason: "why" });
    for (const state of ["ready", "draining", "activating", "failed", "fetching"] as const)
      expect(effectOf(at(state), act("revive"), false)).toBeNull();
    expect(effectOf(undefined, act("revive"), false)).toBeNull();
  });

  test("only undrain asks whether the service runs", () => {
    expect(
      (["wanted", "drain", "undrain", "scale-to-zero", "retire", "revive"] as const).filter((k) =>
        needsServiceState(act(k)),
      ),
    ).toEqual(["undrain"]);
  });
});
