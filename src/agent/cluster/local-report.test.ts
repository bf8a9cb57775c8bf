import { expect, test } from "bun:test";
import type { Deployment } from "../../model/deployment.ts";
import { RECENTLY_RETIRED_MAX, RECENTLY_RETIRED_MS, reportedRows } from "./local-report.ts";

const row = (hash: string, state: Deployment["state"], updatedAt: number, retiredByHand = false) =>
  ({ hash, state, updatedAt, retiredByHand }) as Deployment;

test("reported: live rows, and the last hashes the retirer retired in the last 10 minutes", () => {
  const now = 1_000_000_000;
  const rows = [
    row("ready", "ready", 0),
    row("draining", "draining", 0),
    row("retired-now", "retired", now - 1000),
    row("retired-by-hand", "retired", now - 1000, true),
    row("retired-long-ago", "retired", now - RECENTLY_RETIRED_MS - 1),
  ];
  expect(reportedRows(rows, now).map((d) => d.hash)).toEqual(["ready", "draining", "retired-now"]);

  const many = Array.from({ length: RECENTLY_RETIRED_MAX + 5 }, (_, i) => row(`r${i}`, "retired", now - i));
  const reported = reportedRows(many, now);
  expect(reported).toHaveLength(RECENTLY_RETIRED_MAX);
  expect(reported[0]?.hash).toBe("r0"); // the newest first
});
