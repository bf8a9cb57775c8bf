/**
 * bunfig.toml asks for exact versions in package.json: every dependency is pinned to the version
 * bun.lock resolved, so package.json, bun.lock and the flake's node_modules tell one story.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(import.meta.dir, "..");
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const lock = readFileSync(path.join(ROOT, "bun.lock"), "utf8");

test("package.json pins exactly the versions bun.lock resolved", () => {
  const wanted = { ...pkg.dependencies, ...pkg.devDependencies };
  expect(Object.keys(wanted).length).toBeGreaterThan(0);
  for (const [name, spec] of Object.entries(wanted)) {
    const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    const resolved = new RegExp(`^\\s*"${escaped}": \\["${escaped}@([^"]+)"`, "m").exec(lock)?.[1];
    expect({ name, spec }).toEqual({ name, spec: resolved as string });
  }
});
