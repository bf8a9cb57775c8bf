import { afterEach, describe, expect, test } from "bun:test";
import {
  fakeHash,
  fillStore,
  fixtureProviders,
  H,
  tickingClock,
} from "../../../test/support/status/fixtures.ts";
import { SseReader } from "../../../test/support/status/sse-reader.ts";
import { StateStore } from "../state/store.ts";
import { statusApp } from "./app.ts";
import type { Patch } from "./live.ts";
import { storeStatusSource } from "./source.ts";
import type { StatusSnapshot, StatusSource } from "./types.ts";

const url = (h: string) => `http://${h}.hashd.test/`;
const stores: StateStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function fixture(pollMs = 20) {
  const store = new StateStore(":memory:", tickingClock(Date.now() - 600_000));
  stores.push(store);
  fillStore(store);
  const source = storeStatusSource(store, url, { ...fixtureProviders(Date.now()), pollMs });
  return { store, source, app: statusApp(source, { heartbeatMs: 200, minPatchMs: 50 }) };
}

/** Table rows of one section, as [data-hash, data-state]. */
function rows(page: string, section: string): string[][] {
  const body = page.split(`<section id="${section}">`)[1]?.split("</section>")[0] ?? "";
  return [...body.matchAll(/<tr data-hash="([^"]+)" data-state="([^"]+)"/g)].map((m) => [
    m[1] ?? "",
    m[2] ?? "",
  ]);
}

describe("GET /", () => {
  test("renders every section server-side, with the expected rows", async () => {
    const { app } = fixture();
    const res = await app.request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const page = await res.text();
    for (const id of ["incidents", "services", "graph", "members", "aliases", "events"])
      expect(page).toContain(`<section id="${id}">`);
    // grouped by service: prod's service first, then what prod reaches nearest first, then the
    // rest by name; in a service the aliased version first, the retired one folded last
    expect(rows(page, "services")).toEqual([
      [H.web2, "ready"],
      [H.web1, "draining"],
      [H.old, "retired"],
      [H.api2, "ready"],
      [H.api1, "draining"],
      [H.db, "ready"],
      [H.report, "failed"],
      [H.worker, "idle"],
    ]);
    expect(
      [...page.matchAll(/<article class="svc[^"]*" id="[^"]+" data-key="svc:([^"]+)"/g)].map((m) => m[1]),
    ).toEqual(["web", "api", "db", "report", "worker"]);
    // a hash links to its own page, in the one short form
    expect(page).toContain(
      `<a class="ref" href="/hashes/${H.web2}"><code class="hash" title="${H.web2}">${H.web2.slice(0, 12)}</code></a>`,
    );
    expect(page).toContain('<details class="fold" data-key="fold:web"><summary>1 retired version</summary>');
    expect(page).toContain("wanted: alias prod");
    // a hash in a reason is named: `service short-hash`, linked
    expect(page).toContain(
      `draining, kept: dependent <a class="ref" href="/hashes/${H.web1}"><span class="svc-name">web</span> <code`,
    );
    expect(page).toContain('data-member="charlie" data-health="suspect"');
    expect(page).toContain('data-alias="prod"');
    expect(page).toContain("scaled to zero after 300 s without requests");
    // the incident strip names what is down, failed and draining
    const strip = page.split('<section id="incidents">')[1]?.split("</section>")[0] ?? "";
    expect(strip).toContain('<b>Down</b> <a href="#members">charlie</a>');
    expect(strip).toContain(">delta</a>");
    expect(strip).toContain(
      `<b>Failed</b> <a class="ref" href="/hashes/${H.report}"><span class="svc-name">report</span>`,
    );
    expect(strip).toContain("error: cannot open /var/lib/report/db");
    expect(strip.match(/<b>Draining<\/b>/g)?.length).toBe(2);
    // the graph: one node per service of prod's closure by default
    expect(
      [...page.matchAll(/<g class="node service" data-service="([^"]+)"/g)].map((m) => m[1]).sort(),
    ).toEqual(["api", "db", "web"]);
    expect(page.match(/<path class="edge"/g)?.length).toBe(2);
    const all = await (await app.request("/?graph=")).text();
    expect(all.match(/<g class="node service"/g)?.length).toBe(5); // every service
  });

  test("GET /hashes/:hash: state, units, dependents, aliases, events and the commands to copy", async () => {
    const { app } = fixture();
    const page = await (await app.request(`/hashes/${H.api2}`)).text();
    expect(page).toContain(`<code class="full">${H.api2}</code>`);
    expect(page).toContain(`hashd-${H.api2}.socket`);
    expect(page).toContain(`hashd logs ${H.api2} -n 200`);
    expect(page).toContain(`hashd show ${H.api2}`);
    const dependents = page.split("Depended on by")[1]?.split("</tr>")[0] ?? "";
    expect(dependents).toContain(`href="/hashes/${H.web2}"`);
    expect(page).toContain('<span class="tag t-prod reached"'); // prod reaches it through web
    expect(page).toContain("accepted a probe connection");
    expect((await app.request("/hashes/not-a-hash")).status).toBe(400);
    expect((await app.request(`/hashes/${fakeHash("nope")}`)).status).toBe(404);
  });

  test("is complete without script: one inline script and style, allowed by hash in the CSP", async () => {
    const { app } = fixture();
    const res = await app.request("/");
    const page = await res.text();
    expect(page.match(/<script/g)?.length).toBe(1);
    expect(page).not.toMatch(
      /<(link|img|iframe)\b|src=|https?:\/\/(?!\w+\.hashd\.test\/|www\.w3\.org\/2000\/svg")/,
    );
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toContain("unsafe-inline");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  test("read-only: nothing but GET is routed", async () => {
    const { app } = fixture();
    for (const method of ["POST", "PUT", "DELETE"]) {
      expect((await app.request("/api/status", { method })).status).toBe(404);
    }
  });

  test("refuses host names other than IP literals, localhost and allowedHosts (DNS rebinding)", async () => {
    const { source } = fixture();
    const app = statusApp(source, { allowedHosts: ["status.example"] });
    for (const host of ["localhost", "127.0.0.1:8080", "[::1]:80", "STATUS.example"]) {
      expect((await app.request("/api/status", { headers: { host } })).status).toBe(200);
    }
    expect((await app.request("http://evil.example/api/status")).status).toBe(400);
  });
});

describe("escaping", () => {
  const X = `<script>alert("x")</script><img src=x onerror=alert(1)>'"&`;

  function hostile(): StatusSnapshot {
    const h = fakeHash("x");
    return {
      self: X,
      zone: X,
      generatedAt: 0,
      members: [{ name: X, address: X, state: "alive", incarnation: 1, lastContact: 0, self: false }],
      hashes: [
        {
          hash: h,
          name: X,
          state: "failed",
          url: `javascript:alert(1)//${X}`,
          readiness: "http",
          readinessPath: X,
          inFlight: 0,
          holds: 0,
          hosts: [{ member: X, state: "failed", inFlight: 0, holds: 0 }],
          refs: [X],
          verdict: X,
          error: `${X}\n${X}`,
          updatedAt: 0,
        },
      ],
      aliases: [{ name: X, hash: X, history: [{ hash: X, at: 0, by: X }] }],
      events: [{ at: 0, hash: X, kind: X, message: X }],
    };
  }
  const source: StatusSource = { snapshot: hostile, subscribe: () => () => {} };

  function noMarkupFrom(text: string) {
    expect(text).not.toContain("<script>alert");
    expect(text).not.toContain("<img");
    expect(text).not.toContain("javascript:");
    expect(text).toContain(
      "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#39;&quot;&amp;",
    );
  }

  test("names, addresses, messages, verdicts and errors from manifests, gossip and events", async () => {
    const page = await (await statusApp(source).request("/")).text();
    noMarkupFrom(page);
    expect(page.split("<script>").length).toBe(2); // ours only
  });

  test("in the fragments pushed over SSE", async () => {
    const res = await statusApp(source).request("/events");
    const sse = new SseReader(res.body as ReadableStream<Uint8Array>);
    noMarkupFrom(JSON.parse((await sse.next("patch")).data).set.strip);
    await sse.close();
  });

  test("a nonsense time from a provider shows as ? instead of failing the page", async () => {
    const bad: StatusSource = {
      snapshot: () => {
        const h = hostile();
        return { ...h, generatedAt: Number.NaN, events: h.events.map((e) => ({ ...e, at: Number.NaN })) };
      },
      subscribe: () => () => {},
    };
    const res = await statusApp(bad).request("/");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<time datetime="">?</time>');
  });

  test("a hostile event message written through the real store", async () => {
    const { store, app } = fixture();
    store.event(H.db, "note", X);
    const page = await (await app.request("/")).text();
    noMarkupFrom(page);
  });
});

describe("/api", () => {
  test("GET /api/status is the snapshot", async () => {
    const { app } = fixture();
    const res = await app.request("/api/status");
    expect(res.headers.get("content-type")).toContain("application/json");
    const snap = (await res.json()) as StatusSnapshot;
    expect(Object.keys(snap).sort()).toEqual([
      "aliases",
      "events",
      "generatedAt",
      "hashes",
      "members",
      "self",
      "zone",
    ]);
    expect(snap.self).toBe("alpha");
    expect(snap.hashes.find((h) => h.hash === H.web2)).toMatchObject({
      name: "web",
      state: "ready",
      readiness: "http",
      inFlight: 7,
      hosts: [
        { member: "alpha", state: "ready" },
        { member: "bravo", state: "ready" },
      ],
      refs: [H.api2],
    });
    expect(snap.aliases[0]).toMatchObject({ name: "prod", hash: H.web2 });
    expect(snap.events[0]).toMatchObject({ hash: H.api1, kind: "draining" });
  });

  test("GET /api/hashes/:hash: the entry and its events; 400 for a non-hash, 404 for an unknown one", async () => {
    const { app } = fixture();
    const ok = (await (await app.request(`/api/hashes/${H.web2}`)).json()) as {
      hash: { hash: string };
      events: { kind: string }[];
    };
    expect(ok.hash.hash).toBe(H.web2);
    expect(ok.events.map((e) => e.kind)).toEqual(["ready", "activating"]);
    const bad = await app.request("/api/hashes/not-a-hash");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("bad_request");
    expect((await app.request(`/api/hashes/${fakeHash("nope")}`)).status).toBe(404);
  });
});

describe("GET /events", () => {
  test("sends every block at once, then only the blocks that changed, and sends heartbeats", async () => {
    const { store, app } = fixture();
    const res = await app.request("/events");
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const sse = new SseReader(res.body as ReadableStream<Uint8Array>);
    const first = JSON.parse((await sse.next("patch")).data) as Patch;
    expect(Object.keys(first.set)).toContain("svc:web");
    expect(first.order["svc-list"]).toEqual(["svc:web", "svc:api", "svc:db", "svc:report", "svc:worker"]);
    expect(JSON.stringify(first)).not.toContain("<html");
    store.transition(H.db, 1, "draining", "alias prod moved away", null);
    const second = JSON.parse((await sse.next("patch", 2000)).data) as Patch;
    // the db service, the strip (a new draining hash), the graph and the new event row; not web
    expect(Object.keys(second.set)).toContain("svc:db");
    expect(Object.keys(second.set)).not.toContain("svc:web");
    expect(second.set["svc:db"]).toContain('data-state="draining"');
    expect(second.set.strip).toContain(`<b>Draining</b> <a class="ref" href="/hashes/${H.db}`);
    expect(Object.values(second.set).join("\n")).toContain("alias prod moved away"); // the new event row
    await sse.next("heartbeat", 2000);
    await sse.close();
  });

  test("moving numbers (in flight) travel as a small load, never as a re-render", async () => {
    const { store } = fixture();
    let inFlight = 3;
    const source = storeStatusSource(store, url, {
      ...fixtureProviders(Date.now()),
      inFlight: (h) => (h === H.web2 ? inFlight : 0),
      pollMs: 20,
    });
    const app = statusApp(source, { heartbeatMs: 60_000, minPatchMs: 50 });
    const sse = new SseReader((await app.request("/events")).body as ReadableStream<Uint8Array>);
    await sse.next("patch");
    inFlight = 9;
    const load = JSON.parse((await sse.next(undefined, 2000)).data) as Record<string, string>;
    expect(load).toEqual({ [`f:${H.web2}`]: "13", [`h:${H.web2}@alpha`]: "9/0" });
    inFlight = 10;
    const ev = await sse.next(undefined, 2000);
    expect(ev.event).toBe("load");
    await sse.close();
  });

  test("a burst of changes costs one render per wake-up, and closing the stream unsubscribes", async () => {
    const { store, source } = fixture();
    let subscribed = 0;
    const counting: StatusSource = {
      snapshot: () => source.snapshot(),
      subscribe: (f) => {
        subscribed++;
        const stop = source.subscribe(f);
        return () => {
          subscribed--;
          stop();
        };
      },
    };
    const app = statusApp(counting, { heartbeatMs: 60_000 });
    const res = await app.request("/events");
    const sse = new SseReader(res.body as ReadableStream<Uint8Array>);
    await sse.next("patch");
    for (let i = 0; i < 20; i++) store.event(H.db, "note", `burst ${i}`);
    expect((await sse.next("patch", 2000)).data).toContain("burst 19");
    await expect(sse.next("patch", 300)).rejects.toThrow(/no patch event/);
    expect(subscribed).toBe(1);
    await sse.close();
    await Bun.sleep(50);
    expect(subscribed).toBe(0);
  });

  test("refuses streams beyond maxStreams", async () => {
    const { source } = fixture();
    const app = statusApp(source, { maxStreams: 1 });
    const one = await app.request("/events");
    expect((await app.request("/events")).status).toBe(503);
    await one.body?.cancel();
  });
});
