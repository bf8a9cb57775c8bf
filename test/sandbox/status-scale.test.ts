/**
 * The status page at a real team's size (issue 17), on a real agent in one sandbox host: 20
 * services in dependency chains (real Nix references: each closure contains its backends' paths),
 * a prod, a staging and preview versions of the frontends (36 hashes), aliases prod, staging and
 * pr-101 … pr-106, and load running against prod through the ingress. In Chromium at 1280 and 390
 * px it checks what an operator needs during an incident:
 *   - prod's service row and its aliases are visible without scrolling at 1280 px;
 *   - an opened box stays open, and the window's and the graph's scroll positions hold, across
 *     10 s of live updates under load (a hash is activated meanwhile: a structural change arrives);
 *   - no horizontal overflow at 390 px;
 *   - every hash on the page has a service name.
 * Screenshots: test/output/status-scale-1280.png and -390.png.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { SERVICES } from "../support/status/scale-fixture.ts";
import { hashdJson, installAgent } from "./agent-host.ts";
import { browserOn } from "./browser.ts";
import { type Host, Sandbox } from "./harness.ts";
import { LOAD_GENERATOR_TS, type LoadSummary } from "./load-generator.ts";
import { serviceExpr } from "./service-closures.ts";

setDefaultTimeout(600_000);

// the scale fixture's services (a chain 6 deep: web → api → orders → ledger → db-proxy → metrics)
/** staging: a second version of the prod chain's upper services */
const STAGING = [
  "web",
  "api",
  "auth",
  "search",
  "catalog",
  "orders",
  "cart",
  "ledger",
  "db-proxy",
  "sessions",
];
const PREVIEWS = ["web", "web", "admin", "docs", "mobile-gw", "web"];

interface Version {
  service: string;
  track: string;
  attr: string;
  path?: string;
}

/** The few browser globals the page functions use (this project's tsconfig has no DOM lib). */
interface Win {
  scrollY: number;
  scrollTo(x: number, y: number): void;
  document: { documentElement: { scrollWidth: number; clientWidth: number; scrollHeight: number } };
}

let sb: Sandbox;
let a: Host;
const versions: Version[] = [];
const hashOf = (v: Version) => (v.path as string).slice(11, 43);
const find = (service: string, track: string) =>
  versions.find((v) => v.service === service && v.track === track) ??
  (versions.find((v) => v.service === service && v.track === "prod") as Version);

/** Depth of a service: 0 for what calls nothing, else 1 + the deepest it calls (activation order). */
function depth(s: string): number {
  const deps = SERVICES[s] ?? [];
  return deps.length ? 1 + Math.max(...deps.map(depth)) : 0;
}

/** One Nix file with every version: each derivation lists its backends in `deps`, so its output references them. */
function buildExpr(): string {
  const lines: string[] = [];
  for (const v of versions) {
    const deps = (SERVICES[v.service] ?? []).map((d) => find(d, v.track).attr);
    const expr = serviceExpr({ name: v.service, version: v.track })
      .replace('builder = "/bin/sh";', `builder = "/bin/sh";\n  deps = [ ${deps.join(" ")} ];`)
      .replace("mkdir -p $out/bin $out/hashd", 'mkdir -p $out/bin $out/hashd; echo "$deps" > $out/deps');
    lines.push(`${v.attr} = ${expr};`);
  }
  return `let\n${lines.join("\n")}\nin { inherit ${versions.map((v) => v.attr).join(" ")}; }`;
}

beforeAll(async () => {
  for (const s of Object.keys(SERVICES)) versions.push({ service: s, track: "prod", attr: "" });
  for (const s of STAGING) versions.push({ service: s, track: "staging", attr: "" });
  PREVIEWS.forEach((s, i) => {
    versions.push({ service: s, track: `pr-${101 + i}`, attr: "" });
  });
  for (const v of versions) v.attr = `s_${v.service.replace(/-/g, "_")}_${v.track.replace(/-/g, "_")}`;

  sb = await Sandbox.create({ hosts: ["a"] });
  a = sb.host("a");
  await installAgent(a, { config: { zone: "test" } });
  await a.writeFile("/root/scale.nix", buildExpr());
  const out = (
    await a.run(["nix-build", "--no-out-link", "/root/scale.nix"], { env: { NIX_REMOTE: "daemon" } })
  )
    .trim()
    .split("\n");
  for (const v of versions) {
    v.path = out.find((p) => p.slice(44) === `${v.service}-${v.track}`);
    if (!v.path) throw new Error(`no output for ${v.service}-${v.track}`);
  }
  // backends first (a layer at a time, in parallel inside a layer), so references are known
  const layers = new Map<number, Version[]>();
  for (const v of versions) layers.set(depth(v.service), [...(layers.get(depth(v.service)) ?? []), v]);
  for (const d of [...layers.keys()].sort((x, y) => x - y)) {
    await Promise.all(
      (layers.get(d) ?? []).map((v) => hashdJson(a, ["activate", v.path as string, "--wait"])),
    );
  }
  const aliases = [
    `prod=${hashOf(find("web", "prod"))}`,
    `staging=${hashOf(find("web", "staging"))}`,
    ...versions.filter((v) => v.track.startsWith("pr-")).map((v) => `${v.track}=${hashOf(v)}`),
  ];
  for (const spec of aliases) await hashdJson(a, ["alias", "set", spec]);
}, 600_000);

afterAll(async () => {
  await sb?.destroy();
});

test("at 20 services under load: prod in view, opened box and scroll hold, fits a phone, every hash named", async () => {
  const started = Date.now();
  let extraHash = "";
  await a.writeFile("/root/load.ts", LOAD_GENERATOR_TS);
  const load = a.spawn(
    ["/usr/bin/bun", "/root/load.ts", "http://127.0.0.1:8480", "prod.test", "8", "/root/stop-load"],
    {
      stdout: "pipe",
    },
  );
  const { browser, close } = await browserOn(a);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(e.message));
    await page.goto("http://127.0.0.1:8481/");
    await page.locator("#live.on").waitFor({ timeout: 30_000 });

    // prod's service row and its aliases, without scrolling
    const web = page.locator('#svc-list article[data-service="web"]');
    expect(await page.locator("#svc-list article").count()).toBe(20);
    const box = await web.locator("h3").boundingBox();
    expect(box).not.toBeNull();
    expect((box?.y ?? 9999) + (box?.height ?? 0)).toBeLessThanOrEqual(900);
    const prodTag = web.locator("h3 .tag.t-prod");
    expect(await prodTag.isVisible()).toBe(true);
    const prodRow = web.locator(`tr[data-hash="${hashOf(find("web", "prod"))}"]`);
    const rowBox = await prodRow.boundingBox();
    expect((rowBox?.y ?? 9999) + (rowBox?.height ?? 0)).toBeLessThanOrEqual(900);
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what a person sees
    expect(await prodRow.innerText()).toMatch(/prod/);

    // every hash on the page has a service name: the rows' groups, and every `service hash` reference
    const unnamed = await page.locator('#svc-list article[data-service="(unnamed)"]').count();
    expect(unnamed).toBe(0);
    const refs = page.locator("a.ref");
    const refCount = await refs.count();
    expect(refCount).toBeGreaterThan(50);
    const named = await page.locator("a.ref:has(.svc-name), td.fit > a.ref").count();
    expect(named).toBe(refCount);

    // open a fold and an error-free row's fold, scroll the graph and the window, then wait 10 s of updates
    const fold = page.locator('details[data-key="fold:web"]');
    await fold.locator("summary").click();
    expect(await fold.evaluate((d) => (d as unknown as { open: boolean }).open)).toBe(true);
    await page.selectOption("#graph-of", "");
    await page.locator('#graph-box [data-graph=""]').waitFor({ timeout: 15_000 });
    await page.setViewportSize({ width: 900, height: 900 }); // narrower: the graph scrolls sideways
    await page.locator("#graph").scrollIntoViewIfNeeded();
    await page.locator(".graph-wrap").evaluate((e) => {
      e.scrollLeft = 120;
    });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.evaluate(() => (globalThis as unknown as Win).scrollTo(0, 600));
    const before = await page.evaluate(() => {
      (globalThis as unknown as { marker?: number }).marker = 7;
      return { y: (globalThis as unknown as Win).scrollY, marker: 7 };
    });
    const inflight = `[data-load="f:${hashOf(find("web", "prod"))}"]`;
    const seen = new Set<string>();
    // a structural change while we watch: a new version of a service appears
    const extra = await a.nixBuild(serviceExpr({ name: "late-arrival", version: "1" }));
    extraHash = extra.slice(11, 43);
    await hashdJson(a, ["activate", extra, "--wait"]);
    for (let t = 0; t < 20; t++) {
      await Bun.sleep(500);
      seen.add((await page.locator(inflight).first().textContent()) ?? "");
    }
    await page
      .locator('#svc-list article[data-service="late-arrival"]')
      .waitFor({ state: "attached", timeout: 15_000 });
    expect(await fold.evaluate((d) => (d as unknown as { open: boolean }).open)).toBe(true);
    const after = await page.evaluate(() => ({
      y: (globalThis as unknown as Win).scrollY,
      marker: (globalThis as unknown as { marker?: number }).marker,
    }));
    expect(after.marker).toBe(before.marker); // no reload
    expect(Math.abs(after.y - before.y)).toBeLessThanOrEqual(2);
    expect(seen.size).toBeGreaterThan(1); // in-flight numbers moved in place
    await page.screenshot({ path: `${import.meta.dir}/../output/status-scale-1280.png` });

    // a filter lives in the URL and survives updates
    await page.fill("#filter", "db-proxy");
    // history.replaceState reaches Playwright's page.url() as an event, not at once: wait for it
    await page.waitForURL(/[?&]q=db-proxy/, { timeout: 10_000 });
    expect(page.url()).toContain("q=db-proxy");
    await Bun.sleep(2500);
    expect(await page.locator('#svc-list article[data-service="db-proxy"]').isVisible()).toBe(true);
    expect(await page.locator('#svc-list article[data-service="web"]').isVisible()).toBe(false);

    // the hash page
    await page.goto(`http://127.0.0.1:8481/hashes/${hashOf(find("api", "prod"))}`);
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what a person sees
    const hashText = await page.locator("main").innerText();
    expect(hashText).toContain(`hashd logs ${hashOf(find("api", "prod"))}`);
    expect(hashText).toMatch(/depended on by/i);
    expect(hashText).toMatch(/web\s+\w{12}/);

    // a phone: nothing spills sideways
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto("http://127.0.0.1:8481/");
    await phone.locator("#live.on").waitFor({ timeout: 30_000 });
    const overflow = await phone.evaluate(() => {
      const root = (globalThis as unknown as Win).document.documentElement;
      return root.scrollWidth - root.clientWidth;
    });
    expect(overflow).toBe(0);
    await phone.screenshot({ path: `${import.meta.dir}/../output/status-scale-390.png` });
    expect(problems).toEqual([]);

    // events record decisions, not traffic: under load the retirer wrote no "kept" row for a hash
    // whose decision did not change (the new version's own events aside), < 1 row per minute
    const window = (Date.now() - started) / 60_000;
    const snapshot = await hashdJson<{ events: { at: number; hash: string; kind: string }[] }>(a, ["status"]);
    const kept = snapshot.events.filter((e) => e.at >= started && e.kind === "kept" && e.hash !== extraHash);
    console.log(`status-scale: ${kept.length} "kept" events in ${window.toFixed(1)} min under load`);
    expect(kept.length).toBeLessThanOrEqual(Math.floor(window));
  } finally {
    await close();
    await a.writeFile("/root/stop-load", "");
    const summary = JSON.parse(await new Response(load.stdout as ReadableStream).text()) as LoadSummary;
    expect(summary.ok).toBeGreaterThan(0);
    console.log(
      `status-scale: ${summary.ok} requests under load, ${Math.round((Date.now() - started) / 1000)} s in the browser`,
    );
  }
});
