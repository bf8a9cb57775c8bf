import { expect, test } from "bun:test";
import type { Nix } from "../nix/nix.ts";
import type { Systemctl } from "../systemd/systemctl.ts";
import { Activator } from "./activator.ts";
import { controlApi } from "./api.ts";
import { parseConfig } from "./config.ts";
import { parseManifest } from "./manifest.ts";
import { StateStore } from "./state/store.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";

test("GET /v1/deployments/:hash/logs reads the service's journal with the asked line count", async () => {
  const store = new StateStore(":memory:");
  store.beginActivation(
    `/nix/store/${H}-web`,
    H,
    parseManifest({ schema: 1, name: "web", exec: ["/bin/true"] }),
    "test",
  );
  const activator = new Activator({
    config: parseConfig({}),
    socketDir: "/run/hashd/sockets",
    store,
    systemctl: {} as Systemctl,
    nix: {} as Nix,
    log: () => {},
  });
  const asked: unknown[] = [];
  const journal = {
    journal: async (unit: string, lines?: number, output?: string) => {
      asked.push([unit, lines, output]);
      return "2025-01-01T00:00:00+0000 a web[1]: up\n-- No entries --";
    },
  };
  const app = controlApi({ store, activator, version: "t", journal }, () => {});
  const r = await app.request(`/v1/deployments/${H}/logs?lines=7`);
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({
    hash: H,
    unit: `hashd-${H}.service`,
    lines: ["2025-01-01T00:00:00+0000 a web[1]: up"],
  });
  expect(asked).toEqual([[`hashd-${H}.service`, 7, "short-iso"]]);
  expect((await app.request(`/v1/deployments/${H}/logs?lines=0`)).status).toBe(400);
  expect((await app.request(`/v1/deployments/${H.replace("0", "1")}/logs`)).status).toBe(404);
  expect((await app.request("/v1/deployments/..%2Fetc/logs")).status).toBe(400);
});
