/**
 * A load generator that runs inside a sandbox host (/usr/bin/bun sees the machine's bun through
 * the host's overlay): `concurrency` loops of GET requests (or of another method, with a 1000-byte
 * body: POST is not retried by the ingress, so it shows a request cut) to one URL with one Host
 * header until a stop file appears, then one JSON summary on stdout. Every response body is kept in a tally, so
 * a test can check which versions answered.
 */
export const LOAD_GENERATOR_TS = String.raw`
const [url, host, concurrency, stopFile, path = "/", method = "GET"] = process.argv.slice(2);
const payload = method === "GET" ? undefined : "x".repeat(1000);
const tally: Record<string, number> = {};
const errors: string[] = [];
let ok = 0, failed = 0, firstFailAt = 0, lastFailAt = 0;
const fail = (text: string) => {
  failed++;
  lastFailAt = Date.now();
  if (!firstFailAt) firstFailAt = lastFailAt;
  if (errors.length < 20) errors.push(text);
};
const stopped = async () => await Bun.file(stopFile).exists();
async function loop() {
  while (!(await stopped())) {
    try {
      const r = await fetch(url + path, { method, body: payload, headers: { host } });
      const body = await r.text();
      if (r.status === 200) { ok++; const key = body.trim(); tally[key] = (tally[key] ?? 0) + 1; }
      else fail(r.status + " " + body.slice(0, 200));
    } catch (e) {
      fail(String(e));
    }
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, loop));
const failingMs = failed ? lastFailAt - firstFailAt : 0;
console.log(JSON.stringify({ ok, failed, failingMs, errors, tally }));
`;

export interface LoadSummary {
  ok: number;
  failed: number;
  /** from the first failed request to the last one */
  failingMs: number;
  errors: string[];
  /** response body -> count */
  tally: Record<string, number>;
}
