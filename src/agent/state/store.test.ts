import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseManifest } from "../../model/manifest.ts";
import { StateStore } from "./store.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const manifest = parseManifest({ schema: 1, name: "svc", exec: ["/bin/true"] });

describe("state store", () => {
  test("uses WAL, a busy timeout, and survives reopening", () => {
    const file = `${mkdtempSync(`${tmpdir()}/hashd-store-`)}/state.sqlite`;
    const a = new StateStore(file);
    expect((a.db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    expect((a.db.query("PRAGMA busy_timeout").get() as { timeout: number }).timeout).toBe(5000);
    a.beginActivation(`/nix/store/${H}-svc`, H, manifest, "activate");
    a.close();
    const b = new StateStore(file);
    expect(b.get(H)?.state).toBe("activating");
    expect(b.events(H).map((e) => e.kind)).toEqual(["activating"]);
    b.close();
  });

  test("a row written before credentials and stateDirectory existed reads with their defaults", () => {
    const s = new StateStore(":memory:");
    s.beginActivation(`/nix/store/${H}-svc`, H, manifest, "activate");
    const { credentials: _c, stateDirectory: _s, ...old } = manifest;
    s.db.query("UPDATE deployments SET manifest = ? WHERE hash = ?").run(JSON.stringify(old), H);
    expect(s.get(H)?.manifest).toEqual({ ...old, credentials: [], stateDirectory: false });
  });

  test("a new activation of a known hash is a new generation", () => {
    const s = new StateStore(":memory:");
    expect(s.beginActivation(`/nix/store/${H}-svc`, H, manifest, "activate").generation).toBe(1);
    s.transition(H, 1, "failed", "start failed", "boom");
    const again = s.beginActivation(`/nix/store/${H}-svc`, H, manifest, "retry");
    expect(again.generation).toBe(2);
    expect(again.error).toBeNull();
  });

  test("a late result of an older generation, or from a state that moved on, changes nothing", () => {
    let now = 1000;
    const s = new StateStore(":memory:", () => now);
    s.beginActivation(`/nix/store/${H}-svc`, H, manifest, "activate");
    s.beginActivation(`/nix/store/${H}-svc`, H, manifest, "activate --force");
    expect(s.transition(H, 1, "failed", "old attempt")).toBeUndefined();
    now = 2000;
    expect(s.transition(H, 2, "ready", "ok")?.readyAt).toBe(2000);
    expect(s.transition(H, 2, "idle", "scaled down", null, "activating")).toBeUndefined();
    expect(s.transition(H, 2, "idle", "scaled down", null, "ready")?.state).toBe("idle");
    expect(s.events(H).map((e) => e.kind)).toEqual(["idle", "ready", "activating", "activating"]);
  });

  test("holds: saved, renewed in place, removed, and still there after reopening", () => {
    const file = `${mkdtempSync(`${tmpdir()}/hashd-store-`)}/state.sqlite`;
    const a = new StateStore(file);
    const hold = { id: "h1", hash: H, ttlSec: 1.5, createdAt: 1000, expiresAt: 2500 };
    a.saveHold(hold);
    a.saveHold({ id: "h2", hash: H, ttlSec: 60, createdAt: 1001, expiresAt: 61_001 });
    a.saveHold({ ...hold, ttlSec: 30, expiresAt: 40_000 });
    a.close();
    const b = new StateStore(file);
    expect(b.holds()).toEqual([
      { ...hold, ttlSec: 30, expiresAt: 40_000 },
      { id: "h2", hash: H, ttlSec: 60, createdAt: 1001, expiresAt: 61_001 },
    ]);
    b.removeHolds(["h2", "unknown"]);
    expect(b.holds().map((h) => h.id)).toEqual(["h1"]);
    b.close();
  });
});
