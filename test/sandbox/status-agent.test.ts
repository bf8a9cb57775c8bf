/**
 * The status page of a real agent (one sandbox host), in a real browser inside that host's network:
 * what a person sees, and a live update when a hash is activated while the page is open.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { hashdJson, installAgent } from "./agent-host.ts";
import { browserOn } from "./browser.ts";
import { type Host, Sandbox } from "./harness.ts";
import { serviceExpr } from "./service-closures.ts";

setDefaultTimeout(180_000);

let sb: Sandbox;
let a: Host;

beforeAll(async () => {
  sb = await Sandbox.create({ hosts: ["a"] });
  a = sb.host("a");
  await installAgent(a, { config: { zone: "test" } });
}, 120_000);

afterAll(async () => {
  await sb?.destroy();
});

test("the status page shows the agent's hashes and updates live when one is activated", async () => {
  const first = await a.nixBuild(serviceExpr({ name: "shown-first" }));
  await hashdJson(a, ["activate", first, "--wait"]);
  await hashdJson(a, ["alias", "set", `prod=${first.slice(11, 43)}`]);
  const { browser, close } = await browserOn(a);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto("http://127.0.0.1:8481/");
    // a page global that a reload would lose (functions run in the page; strings would need eval, which the CSP forbids)
    await page.evaluate(() => {
      (globalThis as unknown as { marker: number }).marker = 42;
    });
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what a person sees
    const body = await page.locator("body").innerText();
    expect(body).toContain("shown-first");
    expect(body).toContain(first.slice(11, 21));
    expect(body).toContain("prod");
    expect(await page.locator("svg").count()).toBeGreaterThan(0);

    const second = await a.nixBuild(serviceExpr({ name: "shown-second" }));
    await hashdJson(a, ["activate", second, "--wait"]);
    // (waitForFunction would evaluate a string in the page, which the page's CSP forbids)
    await page.locator('#svc-list article[data-service="shown-second"]').waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(42); // no reload
    await page.screenshot({ path: `${import.meta.dir}/../output/agent-status-page.png`, fullPage: true });
  } finally {
    await close();
  }
});
