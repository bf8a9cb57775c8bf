#!/usr/bin/env bun
import { main } from "./cli/main.ts";

// Output is collected and written with awaited writes: process.exit() right after a
// process.stdout.write() to a pipe can drop what was not flushed yet.
const out: string[] = [];
const err: string[] = [];
const code = await main(process.argv.slice(2), {
  out: (text) => out.push(`${text}\n`),
  err: (text) => err.push(`${text}\n`),
});
if (out.length) await Bun.write(Bun.stdout, out.join(""));
if (err.length) await Bun.write(Bun.stderr, err.join(""));
process.exit(code);
