import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { outputClosed } from "./output-closed.ts";
import { runAttached } from "./stream.ts";

const dir = mkdtempSync(join(tmpdir(), "hashd-stream-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("outputClosed", () => {
  test("a pipe whose reader closed is closed; with a reader it is not; a file or no descriptor is not", () => {
    const fifo = join(dir, "fifo");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      expect(outputClosed(writer)).toBe(false);
      closeSync(reader);
      expect(outputClosed(writer)).toBe(true);
    } finally {
      closeSync(writer);
    }
    const file = openSync(join(dir, "file"), "w");
    try {
      expect(outputClosed(file)).toBe(false);
    } finally {
      closeSync(file);
    }
    expect(outputClosed(1_000_000)).toBe(false);
  });
});

/**
 * runAttached in a process of its own (signals are process-wide): it streams a child that prints
 * and then waits, and prints how the stream ended on its stderr.
 */
function attachedScript(childArgv: string[]): string {
  const script = join(dir, `attached-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(
    script,
    `import { runAttached } from ${JSON.stringify(join(import.meta.dir, "stream.ts"))};
const end = await runAttached({ argv: ${JSON.stringify(childArgv)}, via: { kind: "journalctl" } });
console.error(JSON.stringify(end));`,
  );
  return script;
}

function attachedProcess(childArgv: string[]) {
  return Bun.spawn([process.execPath, attachedScript(childArgv)], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

async function readUntil(stream: ReadableStream<Uint8Array>, pattern: RegExp) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  return { text, reader };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("runAttached", () => {
  test.each(["SIGTERM", "SIGINT", "SIGHUP"] as const)(
    "%s to the CLI is forwarded to the child, which is waited for; the CLI reports it stopped",
    async (signal) => {
      // the child writes straight to the CLI's stdout (no copy), then waits to be stopped
      const p = attachedProcess(["sh", "-c", "echo child $$; exec sleep 30"]);
      const { text } = await readUntil(p.stdout, /child (\d+)\n/);
      const childPid = Number(/child (\d+)/.exec(text)?.[1]);
      expect(alive(childPid)).toBe(true);
      p.kill(signal);
      expect(await p.exited).toBe(0);
      const end = JSON.parse(await new Response(p.stderr).text());
      expect(end).toEqual({ code: null, signal, stoppedBy: signal, outputClosed: false });
      expect(alive(childPid)).toBe(false);
    },
  );

  test("a reader that goes away ends the child and is reported (stdout a socket, as Bun connects children)", async () => {
    const p = attachedProcess(["sh", "-c", "echo ready; while :; do echo more; sleep 0.05; done"]);
    const { reader } = await readUntil(p.stdout, /ready\n/);
    await reader.cancel(); // closes the only reader of the CLI's stdout
    expect(await p.exited).toBe(0);
    const end = JSON.parse(await new Response(p.stderr).text());
    expect(end).toMatchObject({ stoppedBy: null, outputClosed: true });
  });

  test("a reader that goes away ends the child and is reported (stdout a pipe: hashd logs -f | head -1)", async () => {
    const script = attachedScript(["sh", "-c", "while :; do echo line; sleep 0.05; done"]);
    const p = Bun.spawn(["sh", "-c", `"$0" "$1" | head -n 1 >/dev/null`, process.execPath, script], {
      stdout: "ignore",
      stderr: "pipe",
    });
    expect(await p.exited).toBe(0);
    const end = JSON.parse(await new Response(p.stderr).text());
    expect(end).toMatchObject({ stoppedBy: null, outputClosed: true });
  });

  test("a program that is not there is a clear error", async () => {
    await expect(
      runAttached({ argv: [join(dir, "no-such-program")], via: { kind: "journalctl" } }),
    ).rejects.toThrow(/^cannot run .*no-such-program/);
  });

  test("a child that ends by itself: its status, nothing stopped", async () => {
    const p = attachedProcess(["sh", "-c", "echo bye; exit 4"]);
    expect(await new Response(p.stdout).text()).toBe("bye\n");
    expect(await p.exited).toBe(0);
    const end = JSON.parse(await new Response(p.stderr).text());
    expect(end).toEqual({ code: 4, signal: null, stoppedBy: null, outputClosed: false });
  });
});
