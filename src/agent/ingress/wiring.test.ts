import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FakeHost } from "../../../test/fakes/fake-host.ts";
import { HASH_A, HASH_B, HASH_C, startUpstream, tempDir } from "../../../test/support/ingress/servers.ts";
import { parseConfig } from "../../model/config.ts";
import { parseManifest } from "../../model/manifest.ts";
import { Notifier } from "../../systemd/notify.ts";
import { openState } from "../compose/open-state.ts";
import { startCluster } from "../compose/start-cluster.ts";
import { startServing } from "../compose/start-serving.ts";
import { StopStack } from "../compose/stop-stack.ts";
import { StateStore } from "../state/store.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./index.ts";

// The wiring the agent does (compose/start-serving.ts, the daemon's own), end to end: ingress,
// scaler, holds API and /metrics, over a state opened on a fake systemd and a cluster of one.
test("the agent's wiring: proxy a request, take a hold, read /metrics", async () => {
  const dir = tempDir();
  const config = parseConfig({
    stateDir: join(dir.path, "state"),
    runtimeDir: join(dir.path, "run"),
    gcRootDir: join(dir.path, "gcroots"),
    ingress: { address: "127.0.0.1", port: 0 },
    status: { address: "127.0.0.1", port: 0 },
  });
  // HASH_A is ready in the database and its units run: the agent adopts it.
  const seed = new StateStore(join(config.stateDir, "state.sqlite"));
  const manifest = parseManifest({
    schema: 1,
    name: "hello",
    exec: ["/bin/true"],
    readiness: { type: "notify" },
    idleStopSec: 300,
  });
  const d = seed.beginActivation(`/nix/store/${HASH_A}-hello`, HASH_A, manifest, "activate");
  seed.transition(HASH_A, d.generation, "ready", "ready");
  seed.close();
  const host = new FakeHost();
  host.units.set(`hashd-${HASH_A}.socket`, "active");
  host.units.set(`hashd-${HASH_A}.service`, "active");

  const failedStops: string[] = [];
  const stops = new StopStack((m) => failedStops.push(m));
  const state = await openState(config, () => {}, { exec: host.exec }, new Notifier({}), stops);
  const { scaler, ingress } = await startServing(state, await startCluster(state, stops), "test", stops);
  const upstream = startUpstream(state.activator.units(HASH_A).socketPath, () => new Response("hello"));
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`http://agent${path}`, {
      ...init,
      unix: path === "/metrics" ? state.paths.controlSocket : state.paths.serviceSocket,
    });

  const response = await fetch(`${ingress.url}/`, { headers: { host: `${HASH_A}.localhost` } });
  expect(await response.text()).toBe("hello");
  const hold = await api("/v1/holds", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${state.holdTokens.tokenFor(HASH_A)}`,
    },
    body: JSON.stringify({ hash: HASH_A, ttlSec: 60 }),
  });
  expect(hold.status).toBe(201);
  const metrics = await api("/metrics");
  expect(metrics.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
  const text = await metrics.text();
  expect(text).toContain(`hashd_ingress_requests_total{hash="${HASH_A}"} 1`);
  expect(text).toContain(`hashd_holds{hash="${HASH_A}"} 1`);
  expect(text).toContain("hashd_idle_stops_total 0");
  expect(scaler.tick()).toEqual([]);

  await stops.stopAll();
  expect(failedStops).toEqual([]);
  upstream.stop(true);
  dir.remove();
});

// Private previews and 410 through the same wiring: a retired row answers 410 to a client on this
// host (local clients pass in every mode), and a bad token file stops the start before anything.
test("the agent's wiring: 410 for a hash retired here, 404 for one never known; a bad token file refuses to start", async () => {
  const dir = tempDir();
  // not under /tmp: the config refuses secrets there (the agent runs with PrivateTmp=)
  const tokenDir = mkdtempSync("/dev/shm/hashd-wiring-");
  const tokenFile = join(tokenDir, "bypass-token");
  writeFileSync(tokenFile, `${"t".repeat(40)}\n`);
  const base = {
    stateDir: join(dir.path, "state"),
    runtimeDir: join(dir.path, "run"),
    gcRootDir: join(dir.path, "gcroots"),
    ingress: { address: "127.0.0.1", port: 0 },
    status: { address: "127.0.0.1", port: 0 },
  };
  const seed = new StateStore(join(base.stateDir, "state.sqlite"));
  const manifest = parseManifest({ schema: 1, name: "hello", exec: ["/bin/true"] });
  const d = seed.beginActivation(`/nix/store/${HASH_B}-hello`, HASH_B, manifest, "activate");
  seed.transition(HASH_B, d.generation, "ready", "ready");
  seed.transition(HASH_B, d.generation, "draining", "unwanted");
  seed.transition(HASH_B, d.generation, "retired", "retired: unwanted");
  seed.close();

  const config = parseConfig({ ...base, access: { hashUrls: "token", bypassTokenFile: tokenFile } });
  const stops = new StopStack(() => {});
  const host = new FakeHost();
  const state = await openState(config, () => {}, { exec: host.exec }, new Notifier({}), stops);
  const { ingress } = await startServing(state, await startCluster(state, stops), "test", stops);
  const gone = await fetch(`${ingress.url}/`, { headers: { host: `${HASH_B}.localhost` } });
  expect(gone.status).toBe(410);
  expect(await gone.text()).toStartWith(`hash ${HASH_B} was retired at `);
  const unknown = await fetch(`${ingress.url}/`, { headers: { host: `${HASH_C}.localhost` } });
  expect(unknown.status).toBe(404);
  await stops.stopAll();

  writeFileSync(tokenFile, "short\n");
  const other = parseConfig({
    ...base,
    runtimeDir: join(dir.path, "run2"),
    access: { bypassTokenFile: tokenFile },
  });
  const refused = openState(other, () => {}, { exec: host.exec }, new Notifier({}), new StopStack(() => {}));
  await expect(refused).rejects.toThrow(`access.bypassTokenFile ${tokenFile} holds a token of 5 characters`);
  expect(existsSync(other.runtimeDir)).toBe(false);
  dir.remove();
  rmSync(tokenDir, { recursive: true, force: true });
});
