#!/usr/bin/env bun
import { main } from "./cli/main.ts";
import { runAttached } from "./cli/stream.ts";
import { WAIT_UPSTREAM_COMMAND, waitUpstreamMain } from "./systemd/wait-upstream.ts";

// Internal: the ExecStartPost= of a proxied service's program unit (src/systemd/proxied-unit.ts).
if (process.argv[2] === WAIT_UPSTREAM_COMMAND) {
  const lines: string[] = [];
  const status = await waitUpstreamMain(process.argv.slice(3), (line) => lines.push(`${line}\n`));
  await Bun.write(Bun.stderr, lines.join(""));
  process.exit(status);
}

// Output is collected and written with awaited writes: process.exit() right after a
// process.stdout.write() to a pipe can drop what was not flushed yet.
const out: string[] = [];
const err: string[] = [];
const code = await main(process.argv.slice(2), {
  out: (text) => out.push(`${text}\n`),
  err: (text) => err.push(`${text}\n`),
  stream: runAttached,
});
if (out.length) await Bun.write(Bun.stdout, out.join(""));
if (err.length) await Bun.write(Bun.stderr, err.join(""));
process.exit(code);
