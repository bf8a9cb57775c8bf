import { describe, expect, test } from "bun:test";
import { fakeHash, tickingClock } from "../../../test/support/status/fixtures.ts";
import { SERVICES, scaleFixture } from "../../../test/support/status/scale-fixture.ts";
import { StateStore } from "../state/store.ts";
import { layoutGraph } from "./graph-layout.ts";
import { SERVICE_LAYOUT, serviceNodeHeight } from "./graph-svg.ts";
import { LiveDiff, loadsOf, structural } from "./live.ts";
import { renderBlocks } from "./render.ts";
import { serviceGraph } from "./service-graph.ts";
import { storeStatusSource } from "./source.ts";
import {
  aliasRank,
  closureOf,
  compareAliases,
  firstErrorLine,
  groupServices,
  incidents,
  reasonParts,
  short,
} from "./view.ts";

function scale() {
  const store = new StateStore(":memory:", tickingClock(Date.now() - 3_600_000, 1000));
  const fx = scaleFixture(store, Date.now());
  const source = storeStatusSource(store, (h) => `http://${h}.z/`, fx.providers);
  return { store, fx, source };
}

describe("view: aliases, closures, reasons", () => {
  test("prod first, staging second, other names, then pr-N in number order", () => {
    const names = ["pr-110", "beta", "pr-9", "staging", "prod", "alpha"].map((name) => ({ name }));
    expect(names.sort(compareAliases).map((a) => a.name)).toEqual([
      "prod",
      "staging",
      "alpha",
      "beta",
      "pr-9",
      "pr-110",
    ]);
    expect(aliasRank("pr-x")).toBe(2);
  });

  test("closure with distances; a cycle terminates", () => {
    const refs: Record<string, string[]> = { a: ["b", "c"], b: ["c"], c: ["a"] };
    expect([...closureOf(["a"], (h) => refs[h] ?? [])]).toEqual([
      ["a", 0],
      ["b", 1],
      ["c", 1],
    ]);
  });

  test("a reason's hashes come out named; other text stays as it is", () => {
    const h = fakeHash("api");
    expect(reasonParts(`referenced by ${h} on alpha`, () => "api")).toEqual([
      "referenced by ",
      { hash: h, name: "api" },
      " on alpha",
    ]);
    expect(reasonParts("no hash here: abc", () => null)).toEqual(["no hash here: abc"]);
    expect(short(h)).toHaveLength(12);
  });

  test("the first error line names the journal line that says what went wrong", () => {
    expect(
      firstErrorLine("readiness: exited 1\nsvc[1]: starting\nsvc[1]: error: no db\nsvc[1]: exiting"),
    ).toBe("readiness: exited 1: svc[1]: error: no db");
    expect(firstErrorLine("plain")).toBe("plain");
  });
});

describe("view at scale (5 members, 20 services, 48 hashes, 15 aliases)", () => {
  test("one group per service; prod's service first, then the services prod reaches nearest first", () => {
    const { store, source } = scale();
    const s = source.snapshot();
    expect(s.hashes).toHaveLength(48);
    const groups = groupServices(s);
    expect(groups.map((g) => g.name).sort()).toEqual(Object.keys(SERVICES).sort());
    expect(groups[0]?.name).toBe("web");
    expect(groups[0]?.aliases.slice(0, 2)).toEqual(["prod", "staging"]);
    expect(groups[0]?.versions[0]?.aliases).toEqual(["prod", "staging"]);
    // api, auth and search are one reference away from prod's web
    expect(
      groups
        .slice(1, 4)
        .map((g) => g.name)
        .sort(),
    ).toEqual(["api", "auth", "search"]);
    // previews and retired versions are folded; failed and draining ones never are
    const all = groups.flatMap((g) => g.versions);
    expect(all.filter((v) => v.fold === "preview").length).toBeGreaterThanOrEqual(10);
    expect(all.filter((v) => v.fold === "retired").length).toBe(5);
    expect(all.filter((v) => v.fold && (v.state === "failed" || v.state === "draining"))).toEqual([]);
    store.close();
  });

  test("every hash has a name: hashes only other members run are named by their reports", () => {
    const { store, source } = scale();
    const s = source.snapshot();
    expect(s.hashes.filter((h) => h.name === null)).toEqual([]);
    const onlyElsewhere = s.hashes.filter((h) => h.state === null);
    expect(onlyElsewhere.length).toBeGreaterThanOrEqual(13);
    expect(onlyElsewhere.every((h) => h.verdict)).toBe(true);
    // the dead member's hashes stay, marked stale and not counted
    const delta = s.hashes.flatMap((h) => h.hosts).filter((x) => x.member === "delta");
    expect(delta.length).toBe(4);
    expect(delta.every((x) => x.stale)).toBe(true);
    store.close();
  });

  test("the incident strip names down members, failed and draining hashes", () => {
    const { store, source } = scale();
    const inc = incidents(source.snapshot());
    expect(inc.down.map((m) => m.name)).toEqual(["charlie", "delta"]);
    expect(inc.failed).toMatchObject([{ name: "search" }]);
    expect(inc.failed[0]?.line).toContain("index /var/lib/search/v7 is missing");
    expect(inc.draining.map((d) => d.name).sort()).toEqual(["api", "web"]);
    store.close();
  });

  test("the graph: one node per service; prod's closure by default; fits 1,240 px", () => {
    const { store, fx, source } = scale();
    const s = source.snapshot();
    const all = serviceGraph(s, "");
    expect(all.nodes).toHaveLength(20);
    const prod = serviceGraph(s, "prod");
    const reach = closureOf([fx.byTrack("web", "prod")], (h) => fx.refsOf.get(h) ?? []);
    expect(prod.nodes.length).toBe(
      new Set([...reach.keys()].map((h) => fx.versions.find((v) => v.hash === h)?.service)).size,
    );
    expect(prod.nodes.every((n) => n.versions?.length === 1)).toBe(true); // one version per service in a closure
    for (const g of [all, prod]) {
      const layout = layoutGraph(g.nodes, g.edges, { ...SERVICE_LAYOUT, nodeHeight: serviceNodeHeight(g) });
      expect(layout.width).toBeLessThanOrEqual(1240);
    }
    // in-edges of the busiest node: one per calling service, not per calling hash
    const into = (id: string) => all.edges.filter((e) => e.to === id).length;
    expect(into("db-proxy")).toBe(Object.values(SERVICES).filter((d) => d.includes("db-proxy")).length);
    store.close();
  });
});

describe("live diffs", () => {
  test("loads are apart from structure; a moving number changes no block", () => {
    const markup = '<td><span data-load="f:x">7</span></td><span data-load="a&amp;b">&lt; 5 s</span>';
    expect(structural(markup)).toBe(
      '<td><span data-load="f:x"></span></td><span data-load="a&amp;b"></span>',
    );
    expect(loadsOf(markup)).toEqual({ "f:x": "7", "a&b": "< 5 s" });
  });

  test("first everything, then nothing when nothing changed, only loads under traffic, a block on a change", () => {
    const { store, fx, source } = scale();
    fx.traffic.on = false;
    const diff = new LiveDiff();
    const first = diff.next(renderBlocks(source.snapshot()));
    expect(Object.keys(first.patch?.set ?? {}).length).toBeGreaterThan(20 + 15 + 5);
    expect(diff.next(renderBlocks(source.snapshot()))).toEqual({ patch: null, loads: null });
    fx.traffic.on = true;
    const busy = diff.next(renderBlocks(source.snapshot()));
    expect(busy.patch).toBeNull();
    expect(Object.keys(busy.loads ?? {}).length).toBeGreaterThan(0);
    const web = fx.byTrack("web", "prod");
    store.event(web, "note", "a new event");
    const changed = diff.next(renderBlocks(source.snapshot()));
    expect(Object.keys(changed.patch?.set ?? {}).every((k) => k.startsWith("ev:"))).toBe(true);
    expect(changed.patch?.order["event-rows"]?.[0]).toStartWith(`ev:`);
    store.close();
  });
});
