import { describe, expect, test } from "bun:test";
import { Disruptions } from "./disruptions.ts";

describe("disruptions", () => {
  test("the longest stretch two members were both up and on the same side", () => {
    const d = new Disruptions(3);
    d.crashed(1, 10);
    d.restarted(1, 20);
    d.partitioned([0, 0, 1], 50); // 2 cut off from 0 and 1
    d.healed(70);
    expect(d.longestConnected(0, 1, 0, 100)).toBe(80); // 20..100 (the partition is not between them)
    expect(d.longestConnected(0, 2, 0, 100)).toBe(50); // 0..50
    expect(d.longestConnected(0, 2, 40, 100)).toBe(30); // 70..100
    expect(d.longestConnected(1, 2, 15, 60)).toBe(30); // 20..50
    d.crashed(0, 90);
    expect(d.longestConnected(0, 2, 60, 120)).toBe(20); // 70..90, then 0 is down
    expect(d.isCrashed(0)).toBe(true);
  });

  test("within a window: crashes, partitions between two members, anything anywhere", () => {
    const d = new Disruptions(3);
    d.partitioned([0, 1, 1], 100);
    d.healed(200);
    expect(d.partitionedWithin(0, 1, 250, 100)).toBe(true);
    expect(d.partitionedWithin(1, 2, 250, 100)).toBe(false);
    expect(d.partitionedWithin(0, 1, 301, 100)).toBe(false);
    expect(d.crashedWithin(2, 250, 100)).toBe(false);
    d.crashed(2, 260);
    expect(d.crashedWithin(2, 1000, 10)).toBe(true); // still down
    expect(d.anyWithin(1000, 10)).toBe(true);
    expect(d.calm).toBe(false);
    d.restarted(2, 1000);
    expect(d.calm).toBe(true);
  });
});
