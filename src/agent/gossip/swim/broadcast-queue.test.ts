import { describe, expect, test } from "bun:test";
import { BroadcastQueue } from "./broadcast-queue.ts";

const msg = (id: number, size = 10): Uint8Array => new Uint8Array(size).fill(id);
const ids = (out: Uint8Array[]): number[] => out.map((b) => b[0] as number);

describe("BroadcastQueue", () => {
  test("fewest transmits first, newest first among equals", () => {
    const q = new BroadcastQueue();
    q.enqueue("a", msg(1));
    q.enqueue("b", msg(2));
    expect(ids(q.take(100, 5))).toEqual([2, 1]);
    q.enqueue("c", msg(3));
    expect(ids(q.take(100, 5))).toEqual([3, 2, 1]);
  });

  test("respects the byte budget and skips what does not fit", () => {
    const q = new BroadcastQueue();
    q.enqueue("small", msg(1, 10));
    q.enqueue("big", msg(2, 50));
    expect(ids(q.take(30, 5))).toEqual([1]);
    expect(ids(q.take(60, 5))).toEqual([2, 1]);
    expect(q.take(5, 5)).toEqual([]);
  });

  test("a broadcast is dropped after `limit` transmits", () => {
    const q = new BroadcastQueue();
    q.enqueue("a", msg(1));
    for (let i = 0; i < 3; i++) expect(ids(q.take(100, 3))).toEqual([1]);
    expect(q.take(100, 3)).toEqual([]);
    expect(q.size).toBe(0);
  });

  test("a newer broadcast with the same key replaces the queued one", () => {
    const q = new BroadcastQueue();
    q.enqueue("node-1", msg(1));
    q.take(100, 9);
    q.enqueue("node-1", msg(2));
    expect(q.size).toBe(1);
    expect(ids(q.take(100, 9))).toEqual([2]);
    expect(q.has("node-1")).toBe(true);
  });

  test("prune drops the most transmitted first", () => {
    const q = new BroadcastQueue();
    q.enqueue("old", msg(1));
    q.take(100, 9);
    q.take(100, 9);
    q.enqueue("mid", msg(2));
    q.take(5, 9); // nothing fits: no transmit counted
    q.enqueue("new", msg(3));
    expect(q.prune(2)).toBe(1);
    expect(q.has("old")).toBe(false);
    expect(ids(q.take(100, 9)).sort()).toEqual([2, 3]);
  });

  test("items taken from the middle of a bucket keep the rest in order", () => {
    const q = new BroadcastQueue();
    q.enqueue("a", msg(1, 10));
    q.enqueue("b", msg(2, 80));
    q.enqueue("c", msg(3, 10));
    expect(ids(q.take(25, 9))).toEqual([3, 1]); // b does not fit and stays
    expect(ids(q.take(100, 9))).toEqual([2, 3, 1]);
  });
});
