import { describe, expect, test } from "bun:test";
import { renderProgress, TtyProgress, truncate } from "./progress.ts";

describe("terminal progress", () => {
  test("one line per host: phase, elapsed time since it started, detail", () => {
    const lines = renderProgress(
      "deploying x to 3 host(s)",
      [
        { label: "root@a", phase: "ready", startedAt: 0, endedAt: 1500, detail: "already live" },
        { label: "root@bb", phase: "copy", startedAt: 500 },
        { label: "c", phase: "waiting" },
      ],
      2000,
      false,
    );
    expect(lines).toEqual([
      "deploying x to 3 host(s)",
      "  ✓ root@a   ready     1.50s  already live",
      "  ⠋ root@bb  copy      1.50s",
      "    c        waiting",
    ]);
  });

  test("updates redraw the block in place; stop erases it", () => {
    let out = "";
    let t = 0;
    const p = new TtyProgress({ write: (s) => (out += s), columns: 80 }, false, () => t);
    p.start("title");
    p.update("root@a", "connect");
    t = 1000;
    p.update("root@a", "failed", "connect: cannot reach root@a");
    p.stop();
    const frames = out.split("\x1b[");
    expect(out.startsWith("\r\x1b[2Ktitle\n")).toBe(true);
    // the second draw moves up 1 line (title), the third 2 (title + host), stop() 2 and clears
    expect(frames.filter((f) => /^\dA/.test(f)).map((f) => f[0])).toEqual(["1", "2", "2"]);
    expect(out).toContain("  ✗ root@a  failed    1.00s  connect: cannot reach root@a");
    expect(out.endsWith("\x1b[2A\r\x1b[J")).toBe(true);
  });

  test("lines are cut to the terminal width, colour codes not counted", () => {
    expect(truncate("abcdef", 4)).toBe("abcd");
    expect(truncate("\x1b[31mabcdef\x1b[0m", 3)).toBe("\x1b[31mabc\x1b[0m");
    expect(truncate("abc", 10)).toBe("abc");
  });
});
