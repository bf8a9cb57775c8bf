import { describe, expect, test } from "bun:test";
import { fakeHash } from "../../../test/support/status/fixtures.ts";
import { graphOf, nodeState, renderGraphSvg } from "./graph-svg.ts";
import type { StatusHash } from "./types.ts";

const [WEB, API, DB, OLD, GONE] = ["web", "api", "db", "old", "gone"].map(fakeHash) as [
  string,
  string,
  string,
  string,
  string,
];

function hash(h: string, over: Partial<StatusHash>): StatusHash {
  return {
    hash: h,
    name: "svc",
    state: "ready",
    url: `http://${h}.z/`,
    readiness: "accept",
    inFlight: 0,
    holds: 0,
    hosts: [{ member: "a", state: over.state ?? "ready", inFlight: 0, holds: 0 }],
    refs: [],
    updatedAt: 1,
    ...over,
  };
}

describe("graphOf", () => {
  test("draws what runs and what it calls; a called hash nobody reports is unknown", () => {
    const g = graphOf([
      hash(WEB, { name: "web", refs: [API] }),
      hash(API, { name: "api", state: "draining", refs: [DB] }),
      hash(OLD, { name: "web", state: "retired", hosts: [], refs: [API] }),
    ]);
    expect(g.nodes.map((n) => [n.label, n.state])).toEqual([
      ["web", "ready"],
      ["api", "draining"],
      ["?", "unknown"],
    ]);
    expect(g.edges).toEqual([
      { from: WEB, to: API },
      { from: API, to: DB },
    ]);
    expect(g.nodes[2]?.href).toBeUndefined();
  });

  test("a hash only other members run takes their liveliest state", () => {
    const h = hash(GONE, {
      state: null,
      name: null,
      hosts: [
        { member: "b", state: "draining", inFlight: 1, holds: 0 },
        { member: "c", state: "ready", inFlight: 0, holds: 0 },
      ],
    });
    expect(nodeState(h)).toBe("ready");
    expect(nodeState({ ...h, hosts: [] })).toBe("unknown");
    expect(nodeState({ ...h, state: "retired", hosts: [] })).toBe("retired");
  });
});

describe("renderGraphSvg", () => {
  test("one node group per hash, one path per reference, state in data attributes and colour", () => {
    const svg = renderGraphSvg(
      graphOf([hash(WEB, { name: "web", refs: [API] }), hash(API, { name: "api", state: "failed" })]),
    ).value;
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/<g class="node"/g)?.length).toBe(2);
    expect(svg.match(/<path class="edge"/g)?.length).toBe(1);
    expect(svg).toContain(`data-hash="${API}" data-state="failed"`);
    expect(svg).toContain('fill="#fee2e2"');
    expect(svg).toContain(`<a href="http://${WEB}.z/">`);
  });

  test("labels and tooltips are escaped; only store hashes become links", () => {
    const evil = `<script>alert("x")</script>`;
    const g = graphOf([hash(WEB, { name: evil, refs: ['"><img src=x onerror=alert(1)>'] })]);
    const svg = renderGraphSvg(g).value;
    expect(svg).not.toContain("<script>");
    expect(svg).not.toContain("<img");
    expect(svg).toContain("&lt;script&gt;");
    expect(svg.match(/<a /g)?.length).toBe(1);
  });

  test("an empty graph says so instead of drawing nothing", () => {
    expect(renderGraphSvg({ nodes: [], edges: [] }).value).toContain("Nothing runs yet");
  });
});
