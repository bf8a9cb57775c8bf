import { describe, expect, test } from "bun:test";
import { stickyRoots, wantedHashes } from "./wanted.ts";

const A = "a".padEnd(32, "0");
const B = "b".padEnd(32, "0");
const C = "c".padEnd(32, "0");
const NOON = Date.UTC(2026, 0, 1, 12, 0, 0);

const report = (hash: string, stickyUntil?: number) => ({
  hash,
  ...(stickyUntil !== undefined ? { stickyUntil } : {}),
});

describe("stickyRoots", () => {
  test("a hash any member reports with stickyUntil after now is a root, with the latest time and who reports it", () => {
    const roots = stickyRoots(
      [
        { name: "x", hashes: [report(B, NOON + 2_000), report(A, NOON + 61_000)] },
        { name: "y", hashes: [report(B, NOON + 3_000), report(C)] },
      ],
      NOON,
    );
    expect(roots).toEqual([
      { hash: A, reason: "sticky clients until 12:01:01 UTC (x)" },
      { hash: B, reason: "sticky clients until 12:00:03 UTC (y)" },
    ]);
  });

  test("once stickyUntil is reached the hash is no root (it drains and retires as any other)", () => {
    const members = [{ name: "x", hashes: [report(A, NOON)] }];
    expect(stickyRoots(members, NOON - 1).map((r) => r.hash)).toEqual([A]);
    expect(stickyRoots(members, NOON)).toEqual([]);
    expect(stickyRoots(members, NOON + 1)).toEqual([]);
  });

  test("the order members are listed in does not change the roots", () => {
    const x = { name: "x", hashes: [report(B, NOON + 5), report(A, NOON + 5)] };
    const y = { name: "y", hashes: [report(A, NOON + 9)] };
    expect(stickyRoots([x, y], NOON)).toEqual(stickyRoots([y, x], NOON));
  });

  test("a sticky root keeps what the hash references", () => {
    const wanted = wantedHashes(stickyRoots([{ name: "x", hashes: [report(A, NOON + 1)] }], NOON), (h) =>
      h === A ? [B] : [],
    );
    expect([...wanted]).toEqual([
      [A, "sticky clients until 12:00:00 UTC (x)"],
      [B, `referenced by ${A}`],
    ]);
  });
});
