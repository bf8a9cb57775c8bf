import { describe, expect, test } from "bun:test";
import type { ErrorCode } from "../lib/errors.ts";
import { failureOf, type HostResult, renderText, type Stage, summarize } from "./result.ts";

const H = "0c7v2bqvqbr3xq4ia4czb2kh1bnr4hy6";
const base = { path: `/nix/store/${H}-web`, hash: H, durationMs: 1234 };

const ready = (host: string, existing = false): HostResult => ({
  host,
  ok: true,
  copied: !existing,
  existing,
  durationMs: 500,
  deployment: { hash: H, name: "web", state: "ready", url: `http://${H}.test/`, path: base.path },
});
const failed = (host: string, code: ErrorCode, stage: Stage, message = "boom"): HostResult => ({
  host,
  ok: false,
  durationMs: 20,
  error: { code, stage, message },
});

describe("summarize: one outcome and one exit code for many hosts", () => {
  test("all ready: ok, the URL from the first ready host, no failure", () => {
    const r = summarize({ ...base, hosts: [ready("a"), ready("b", true)] });
    expect(r.ok).toBe(true);
    expect(r.url).toBe(`http://${H}.test/`);
    expect(failureOf(r)).toBeUndefined();
  });

  test.each<[string, HostResult[], ErrorCode, number]>([
    ["one unreachable", [ready("a"), failed("b", "unavailable", "connect")], "unavailable", 8],
    [
      "signature refused everywhere",
      [failed("a", "nix_failed", "copy"), failed("b", "nix_failed", "copy")],
      "nix_failed",
      5,
    ],
    ["bad manifest", [failed("a", "bad_request", "activate")], "bad_request", 2],
    ["failed start", [ready("a"), failed("b", "systemd_failed", "activate")], "systemd_failed", 6],
    // different causes: the first failing host in --to order decides, not the first to fail in time
    [
      "first failing host decides",
      [ready("a"), failed("b", "systemd_failed", "activate"), failed("c", "unavailable", "connect")],
      "systemd_failed",
      6,
    ],
    [
      "first failing host decides (reversed)",
      [failed("c", "unavailable", "connect"), failed("b", "systemd_failed", "activate")],
      "unavailable",
      8,
    ],
  ])("%s", (_, hosts, code, exitCode) => {
    const r = summarize({ ...base, hosts });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe(code);
    expect(failureOf(r)?.exitCode).toBe(exitCode);
  });

  test("the message names each failing host, its stage and cause, and what was deployed", () => {
    const r = summarize({
      ...base,
      hosts: [
        ready("root@a"),
        failed("root@b", "systemd_failed", "activate", "exit 3\n--- journal ---\ncrashing"),
      ],
    });
    expect(r.error?.message).toBe(
      `deploy of ${H} failed on 1 of 2 host(s):\n` +
        "  root@b: activate failed (systemd_failed): exit 3\n    --- journal ---\n    crashing\n" +
        "  deployed and left as they are: root@a",
    );
    expect(r.url).toBe(`http://${H}.test/`);
  });

  test("several failures say which host the exit code comes from", () => {
    const r = summarize({
      ...base,
      hosts: [failed("x", "unavailable", "connect"), failed("y", "nix_failed", "copy")],
    });
    expect(r.error?.message).toContain("failed on 2 of 2 host(s) (exit code from the first, x: unavailable)");
    expect(r.url).toBeNull();
  });

  test("alias failures count after deploy failures", () => {
    const r = summarize({
      ...base,
      hosts: [ready("a"), ready("b")],
      alias: {
        name: "prod",
        switched: false,
        hosts: [
          { host: "a", ok: true },
          { host: "b", ok: false, error: { code: "not_found", stage: "alias", message: "no alias command" } },
        ],
      },
    });
    expect(r.error?.code).toBe("not_found");
    expect(r.error?.message).toContain("b: alias failed (not_found): no alias command");
  });

  test("the terminal summary has one line per host", () => {
    const text = renderText(
      summarize({
        ...base,
        hosts: [ready("root@a"), ready("root@bb", true), failed("c", "unavailable", "connect")],
      }),
    );
    expect(text.split("\n")).toEqual([
      `deploy failed: /nix/store/${H}-web`,
      `  url: http://${H}.test/`,
      "  root@a   ready    0.50s  (copied, activated)",
      "  root@bb  ready    0.50s  (already live, nothing touched)",
      "  c        failed   0.02s  at connect (unavailable)",
      "  took 1.23s",
    ]);
  });
});
