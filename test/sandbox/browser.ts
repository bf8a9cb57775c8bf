import { existsSync } from "node:fs";
import type { Browser } from "playwright-core";
import type { Host } from "./harness.ts";

export const CHROMIUM = "/usr/bin/chromium";

/** Flags for a headless test browser: no sandbox (root), no GPU, QUIC or background traffic. */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Headless Debian Chromium (driven by playwright-core) inside a sandbox host's network namespace,
 * so that it reaches what the host serves on its own 127.0.0.1, as a person on that host would.
 * The launcher is a two-line wrapper around nsenter; close() removes it.
 */
export async function browserOn(host: Host): Promise<{ browser: Browser; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/setup.sh does)`);
  const { chromium } = await import("playwright-core");
  const wrapper = `/run/hashd-sandbox/chromium-${process.pid}-${host.name}`;
  await Bun.write(wrapper, `#!/bin/sh\nexec nsenter --net=/proc/${host.pid}/ns/net ${CHROMIUM} "$@"\n`);
  await Bun.$`chmod 755 ${wrapper}`;
  const browser = await chromium.launch({
    executablePath: wrapper,
    args: [...CHROMIUM_FLAGS],
  });
  return {
    browser,
    async close() {
      await browser.close();
      await Bun.$`rm -f ${wrapper}`;
    },
  };
}
