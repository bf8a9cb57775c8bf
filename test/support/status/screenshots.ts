/**
 * Screenshots of the status page at scale (the scale fixture: 5 members, 20 services, 48 hashes,
 * 15 aliases, 200 events) in headless Chromium, for docs/status-page.md and the README:
 *   docs/img/status-1280.png   the first screen at 1280 px
 *   docs/img/status-390.png    a phone (390 px), the first two screens
 *   docs/img/status-graph.png  the graph: the closure of prod, then every service
 *   docs/img/status-hash.png   one hash's page
 *
 *   bun test/support/status/screenshots.ts [outDir=docs/img]
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { StateStore } from "../../../src/agent/state/store.ts";
import { startStatusServer, storeStatusSource } from "../../../src/agent/status/index.ts";
import { CHROMIUM, CHROMIUM_FLAGS } from "../../sandbox/browser.ts";
import { tickingClock } from "./fixtures.ts";
import { scaleFixture } from "./scale-fixture.ts";

/** The browser globals the page functions use (this project's tsconfig has no DOM lib). */
interface Win {
  document: { documentElement: { scrollWidth: number; clientWidth: number; scrollHeight: number } };
}

const out = process.argv[2] ?? join(import.meta.dir, "../../../docs/img");
mkdirSync(out, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), "hashd-status-shots-"));
const store = new StateStore(join(dir, "state.sqlite"), tickingClock(Date.now() - 3_600_000, 1000));
const fx = scaleFixture(store, Date.now());
const source = storeStatusSource(store, (h) => `http://${h}.hashd.test/`, fx.providers);
const server = startStatusServer({ address: "127.0.0.1", port: 0 }, source);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(server.url);
  await page.locator("#live.on").waitFor({ timeout: 10_000 });
  await page.screenshot({ path: join(out, "status-1280.png") });
  await page.locator("#graph").screenshot({ path: join(out, "status-graph.png") });
  await page.goto(`${server.url}?graph=`);
  await page.locator("#live.on").waitFor({ timeout: 10_000 });
  await page.locator("#graph").screenshot({ path: join(out, "status-graph-all.png") });
  await page.goto(`${server.url}hashes/${fx.byTrack("search", "staging")}`);
  await page.screenshot({ path: join(out, "status-hash.png") });
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
  await phone.goto(server.url);
  await phone.locator("#live.on").waitFor({ timeout: 10_000 });
  await phone.screenshot({
    path: join(out, "status-390.png"),
    clip: { x: 0, y: 0, width: 390, height: 1688 },
    fullPage: true,
  });
  const sizes = await phone.evaluate(() => {
    const root = (globalThis as unknown as Win).document.documentElement;
    return {
      overflow: root.scrollWidth - root.clientWidth,
      screens: Math.round((root.scrollHeight / 844) * 10) / 10,
    };
  });
  const desk = await page.evaluate(() => {
    const root = (globalThis as unknown as Win).document.documentElement;
    return root.scrollWidth - root.clientWidth;
  });
  console.log(JSON.stringify({ out, phone: sizes, desktopOverflow: desk }));
} finally {
  await browser.close();
  await server.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
