/**
 * The status page in a real browser: Debian's chromium, driven over the DevTools protocol by
 * playwright-core, against statusApp served by Bun on 127.0.0.1 over a real StateStore (a
 * temporary SQLite file) filled through the store's own methods. Checks what a person sees, that
 * a change in the store reaches the open page without a reload (SSE), that the first render needs
 * no script, and saves a screenshot (test/output/status-page.png; HASHD_SCREENSHOT=path to choose).
 *
 * The browser is started here (not by playwright) so this test owns its process and kills it by
 * pid; it gets a fresh --user-data-dir and no network beyond 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { StateStore } from "../../src/agent/state/store.ts";
import { type StatusServer, startStatusServer, storeStatusSource } from "../../src/agent/status/index.ts";
import {
  deploy,
  fakeHash,
  fillStore,
  fixtureProviders,
  H,
  tickingClock,
} from "../support/status/fixtures.ts";
import { CHROMIUM, CHROMIUM_FLAGS } from "./browser.ts";

const SCREENSHOT = process.env.HASHD_SCREENSHOT ?? join(import.meta.dir, "../output/status-page.png");
const WEB3 = fakeHash("web-3");

setDefaultTimeout(60_000);

let dir: string;
let store: StateStore;
let server: StatusServer;
let proc: ReturnType<typeof Bun.spawn> | undefined;
let browser: Browser;
let subscribers = 0;
let moved = false;

/** Starts chromium with remote debugging on a free port and returns its DevTools WebSocket URL. */
async function startChromium(userDataDir: string): Promise<string> {
  proc = Bun.spawn(
    [
      CHROMIUM,
      "--headless",
      ...CHROMIUM_FLAGS,
      `--user-data-dir=${userDataDir}`,
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      "about:blank",
    ],
    { stdout: "ignore", stderr: "pipe" },
  );
  const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m?.[1]) {
      reader.releaseLock(); // the rest of stderr is left unread; chromium is quiet in headless mode
      return m[1];
    }
  }
  throw new Error(`chromium did not start:\n${text.slice(-2000)}`);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/setup.sh)`);
  dir = mkdtempSync(join(tmpdir(), "hashd-status-page-"));
  store = new StateStore(join(dir, "state.sqlite"), tickingClock(Date.now() - 9 * 60_000, 20_000));
  fillStore(store);
  const given = fixtureProviders(Date.now());
  // What gossip and the planner would say once prod moved to web-3 (the test flips `moved`).
  const aliasesNow = () =>
    (given.aliases?.() ?? []).map((a) =>
      moved && a.name === "prod"
        ? { ...a, hash: WEB3, history: [{ hash: WEB3, at: Date.now(), by: "alpha" }, ...a.history] }
        : a,
    );
  const verdictsNow = () => {
    const v = new Map(given.verdicts?.() ?? []);
    if (moved) {
      v.set(WEB3, { reason: "wanted: alias prod" });
      v.set(H.web2, { reason: "draining, kept: 7 in flight and 0 hold(s) on alpha, bravo" });
    }
    return v;
  };
  const inner = storeStatusSource(store, (h) => `http://${h}.hashd.test/`, {
    ...given,
    aliases: aliasesNow,
    verdicts: verdictsNow,
    refs: (h) => (h === WEB3 ? [H.api2] : (given.refs?.(h) ?? [])),
    pollMs: 200,
    eventLimit: 15,
  });
  const source = {
    ...inner,
    subscribe(onChange: () => void) {
      subscribers++;
      const stop = inner.subscribe(onChange);
      return () => {
        subscribers--;
        stop();
      };
    },
  };
  server = startStatusServer({ address: "127.0.0.1", port: 0 }, source, { heartbeatMs: 1000 });
  browser = await chromium.connectOverCDP(await startChromium(join(dir, "profile")));
});

afterAll(async () => {
  await browser?.close().catch(() => {});
  if (proc) {
    proc.kill("SIGTERM");
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
    if (!exited) proc.kill("SIGKILL");
  }
  await server?.stop();
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The text a person sees (rendered, cells apart), which is what this test is about. */
// biome-ignore lint/performance/useDomNodeTextContent: Playwright's rendered text is the point here
const seen = (l: Locator) => l.innerText();

const rowState = (page: Page, hash: string) =>
  page.locator(`#svc-list tr[data-hash="${hash}"]`).getAttribute("data-state", { timeout: 5000 });

describe("status page in chromium", () => {
  test("shows services, the graph, members, aliases and events, then follows the store live in place", async () => {
    const context = browser.contexts()[0] ?? (await browser.newContext());
    const page = await context.newPage();
    await page.setViewportSize({ width: 1400, height: 900 });
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(e.message));

    await page.goto(server.url);
    expect(await page.title()).toBe("hashd · alpha");
    await page.locator("#live.on").waitFor({ timeout: 10_000 }); // the SSE stream is open

    // Services as a person reads them: prod's service first, one row per version.
    const rows = page.locator("#svc-list tr[data-hash]");
    expect(await rows.count()).toBe(8);
    expect(await page.locator("#svc-list article").first().getAttribute("data-service")).toBe("web");
    const web2 = page.locator(`#svc-list tr[data-hash="${H.web2}"]`);
    expect(await seen(web2)).toMatch(
      /^1gsfxkm17mvq\s*prod\s*staging\s+ready\s+alpha ready 3\/0\s+bravo ready 4\/0\s+7/,
    );
    expect(await web2.locator("a").first().getAttribute("href")).toBe(`/hashes/${H.web2}`);
    expect(await seen(page.locator(`#svc-list tr[data-hash="${H.report}"]`))).toContain(
      "readiness: process exited with status 1",
    );
    // the incident strip names the failed hash with its telling error line
    expect(await seen(page.locator("#incidents"))).toContain("error: cannot open /var/lib/report/db");

    // The graph: one node per service of prod's closure, callers left of what they call.
    expect(await page.locator("svg.graph g.node").count()).toBe(3);
    expect(await page.locator("svg.graph path.edge").count()).toBe(2);
    const box = async (service: string) => {
      const b = await page.locator(`svg.graph g.node[data-service="${service}"]`).boundingBox();
      if (!b) throw new Error(`graph node ${service} is not displayed`);
      return b;
    };
    const [bWeb, bApi, bDb] = [await box("web"), await box("api"), await box("db")];
    expect(bWeb.x).toBeLessThan(bApi.x);
    expect(bApi.x).toBeLessThan(bDb.x);
    expect(bWeb.width).toBeGreaterThan(100);
    expect(await page.locator('svg.graph g.node[data-service="db"]').textContent()).toContain(
      H.db.slice(0, 12),
    );
    // every service, chosen in the selector (kept in the URL): the failed one is red
    await page.selectOption("#graph-of", "");
    await page.locator('#graph-box [data-graph=""]').waitFor({ timeout: 5000 });
    await page.waitForURL(/[?&]graph=/, { timeout: 10_000 }); // replaceState reaches page.url() as an event
    expect(page.url()).toContain("graph=");
    expect(await page.locator("svg.graph g.node").count()).toBe(5);
    const fill = `getComputedStyle(document.querySelector('svg.graph g.node[data-service="report"] rect')).fill`;
    expect(await page.evaluate(fill)).toBe("rgb(254, 226, 226)");

    // Members, aliases, events with their reasons.
    expect(await seen(page.locator('#members tr[data-member="charlie"]'))).toContain("suspect");
    expect(await seen(page.locator('#aliases tr[data-alias="prod"]'))).toContain("by bravo");
    await page.getByText("scaled to zero after 300 s without requests").first().waitFor({ timeout: 1000 });

    // Live: change the store through its own methods; the open page follows without a reload,
    // and an opened error box stays open.
    const err = page.locator(`details[data-key="err:${H.report}"]`);
    await err.locator("summary").click();
    await page.evaluate("window.notReloaded = true");
    deploy(store, "web", WEB3, ["ready: http GET /health answered 200"], { type: "http", path: "/health" });
    moved = true;
    store.transition(H.web2, 1, "draining", "alias prod moved to web-3", null, "ready");
    await page.locator(`#svc-list tr[data-hash="${WEB3}"][data-state="ready"]`).waitFor({ timeout: 5000 });
    expect(await rowState(page, H.web2)).toBe("draining");
    expect(await page.locator(`svg.graph g.version[data-hash="${WEB3}"]`).getAttribute("data-state")).toBe(
      "ready",
    );
    await page.getByText("alias prod moved to web-3").first().waitFor({ timeout: 3000 });
    expect(await seen(page.locator('#aliases tr[data-alias="prod"] td').nth(1))).toBe(
      `web ${WEB3.slice(0, 12)}`,
    );
    expect(await err.getAttribute("open")).not.toBeNull();
    expect(await page.evaluate("window.notReloaded")).toBe(true);
    expect(await page.evaluate('performance.getEntriesByType("navigation").length')).toBe(1);

    expect(problems).toEqual([]); // no script error, no CSP violation
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.close();
    await Bun.sleep(300);
    expect(subscribers).toBe(0); // the closed page's stream was noticed and unsubscribed
  });

  test("the first render is complete with JavaScript disabled", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(server.url);
    expect(await page.locator("#svc-list tr[data-hash]").count()).toBeGreaterThanOrEqual(8);
    expect(await page.locator("svg.graph g.node").count()).toBeGreaterThanOrEqual(3);
    expect(await seen(page.locator("#live"))).toBe("static");
    await context.close();
  });
});
