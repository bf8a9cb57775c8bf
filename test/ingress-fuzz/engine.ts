/**
 * Differential fuzz of the ingress against node:http (request smuggling). For each generated case:
 *
 * 1. the reference (reference-server.mjs, node's llhttp, strict) parses the original bytes;
 * 2. the same bytes go to a real ingress (started here, in-process) on a fresh TCP connection; the
 *    ingress forwards to node:http servers on unix sockets, which report every request they parse;
 * 3. the oracle (oracle.ts) compares what the upstream saw with what the reference saw.
 *
 * Cases run in lanes (default 24) so that many are in flight; each lane is its own hash and its own
 * upstream socket and runs one case at a time, so everything its upstream reports belongs to that
 * lane's current case. The ingress runs with no idle pool (maxIdlePerUpstream 0): every forwarded
 * request gets its own upstream connection, which is what lets the oracle see a smuggled second
 * request (two requests on one connection), and the route table counts the requests routed to each
 * lane, so a case ends exactly when that many upstream connections have closed.
 *
 * When the client side ends: when the ingress closes it; or once the ingress has answered as many
 * requests as the reference completed (at least one) and every routed request's upstream connection
 * is closed, and nothing more happens for graceMs; or after idleMs with nothing happening (the
 * ingress waits for bytes that will not come, which is a refusal). The engine then sends a FIN and
 * waits for the ingress to close, which it does only after reading everything sent before: no
 * request of the case can be routed later. Closing early can only hide a finding (a request cut
 * short upstream is a prefix of the reference's), never make one up, so a slow machine finds less
 * in the cases that end idle but fails no differently.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket, Subprocess } from "bun";
import { InFlight } from "../../src/agent/ingress/inflight.ts";
import { type Ingress, startIngress } from "../../src/agent/ingress/server.ts";
import type { Route, RouteTable } from "../../src/agent/ingress/types.ts";
import { CANON_HASH, type FuzzCase, generateCase } from "./generate.ts";
import { type ClientResponse, type ConnReport, type Finding, judge } from "./oracle.ts";

export interface EngineOptions {
  /** cases in flight at once */
  lanes?: number;
  /** end a case's client connection after this long with nothing happening */
  idleMs?: number;
  /** ... or this long after everything the reference expects has happened */
  graceMs?: number;
  /** give up waiting for the upstream connections of a case after this long (a harness finding) */
  settleMs?: number;
  /** the node binary (default: `node` on PATH) */
  node?: string;
  /** the ingress to test (default: this tree's; the bench can load another copy, e.g. an older commit's) */
  startIngress?: typeof startIngress;
}

export interface CaseResult {
  fuzzCase: FuzzCase;
  /** the bytes as sent (the lane's hash in place of CANON_HASH) */
  sent: string;
  /** requests the upstream saw (forwarded by the ingress) */
  forwarded: number;
  /** requests the reference parsed */
  referenceRequests: number;
  referenceError: string | undefined;
  /** the final responses the client got */
  responses: ClientResponse[];
  /** how the client connection ended */
  ended: "ingress-closed" | "answered" | "idle";
  findings: Finding[];
}

export interface FindingClass {
  cls: string;
  benign: boolean;
  count: number;
  /** the shortest case found for it */
  example: { index: number; bytes: string; tags: string[]; message: string };
  /** how often each generator tag occurred in its cases (which mutation brings it on) */
  tags: Map<string, number>;
}

export interface RunSummary {
  seed: number;
  cases: number;
  /** cases in which the upstream saw at least one request */
  forwarded: number;
  /** cases in which it saw none */
  refused: number;
  /** client connections the engine ended after idleMs (the ingress was waiting for more) */
  idle: number;
  /** cases with at least one non-benign finding */
  failing: number;
  classes: FindingClass[];
  /** errors the ingress logged (an exception in its code costs a connection) */
  ingressErrors: string[];
  ms: number;
}

interface Lane {
  index: number;
  hash: string;
  socketPath: string;
  /** requests the ingress routed to this lane in its current case */
  routed: number;
  closed: number;
  reports: (ConnReport & { c: number })[];
  /** called on every upstream event of the lane's current case */
  onChange: (() => void) | undefined;
  /** the case it ran before the current one */
  previous: number | undefined;
}

const ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";
const SCRIPT = join(import.meta.dir, "reference-server.mjs");

/** A hash per lane, distinct from the generator's CANON_HASH and OTHER_HASH, of the same length. */
function laneHash(index: number): string {
  return `${ALPHABET[index % 32]}${ALPHABET[Math.floor(index / 32) % 32]}fvzz${CANON_HASH.slice(6)}`;
}

export class FuzzEngine {
  private readonly lanes: Lane[] = [];
  private readonly byHash = new Map<string, Lane>();
  private readonly waiting = new Map<number, (report: ConnReport & { stuck: boolean }) => void>();
  private nextId = 0;
  private ingress!: Ingress;
  private readonly inflight = new InFlight();
  private node!: Subprocess<"pipe", "pipe", "inherit">;
  private nodeGone: string | undefined;
  readonly ingressErrors: string[] = [];
  private readonly idleMs: number;
  private readonly graceMs: number;
  private readonly settleMs: number;

  private constructor(
    private readonly dir: string,
    options: EngineOptions,
  ) {
    this.idleMs = options.idleMs ?? 150;
    this.graceMs = options.graceMs ?? 3;
    this.settleMs = options.settleMs ?? 10_000;
    const lanes = options.lanes ?? 24;
    for (let index = 0; index < lanes; index++) {
      const lane: Lane = {
        index,
        hash: laneHash(index),
        socketPath: join(dir, `up-${index}.sock`),
        routed: 0,
        closed: 0,
        reports: [],
        onChange: undefined,
        previous: undefined,
      };
      this.lanes.push(lane);
      this.byHash.set(lane.hash, lane);
    }
  }

  static async start(options: EngineOptions = {}): Promise<FuzzEngine> {
    const node = options.node ?? Bun.which("node");
    if (!node)
      throw new Error("the ingress differential fuzz needs node (node:http is the reference parser)");
    const engine = new FuzzEngine(mkdtempSync(join(tmpdir(), "hashd-fuzz-")), options);
    await engine.startNode(node);
    engine.startIngress(options.startIngress ?? startIngress);
    return engine;
  }

  get laneCount(): number {
    return this.lanes.length;
  }

  private async startNode(node: string): Promise<void> {
    const ready = Promise.withResolvers<void>();
    this.node = Bun.spawn([node, SCRIPT, this.dir, String(this.lanes.length)], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    void this.node.exited.then((code) => {
      this.nodeGone = `the reference process exited (${code})`;
      ready.reject(new Error(this.nodeGone));
      for (const resolve of this.waiting.values()) resolve({ reqs: [], err: null, stuck: true });
      this.waiting.clear();
    });
    void (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of this.node.stdout) {
        buf += decoder.decode(chunk, { stream: true });
        let start = 0;
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n", start)) {
          const line = buf.slice(start, nl);
          start = nl + 1;
          if (line === '{"k":"ready"}') ready.resolve();
          else this.onNodeLine(line);
        }
        buf = buf.slice(start);
      }
    })();
    await ready.promise;
  }

  private onNodeLine(line: string): void {
    const msg = JSON.parse(line) as ConnReport & {
      k: string;
      i: number;
      l: number;
      c: number;
      stuck: boolean;
    };
    if (msg.k === "ref") {
      const resolve = this.waiting.get(msg.i);
      this.waiting.delete(msg.i);
      resolve?.(msg);
      return;
    }
    const lane = this.lanes[msg.l];
    if (lane === undefined) return;
    lane.reports.push(msg);
    lane.closed++;
    lane.onChange?.();
  }

  private startIngress(start: typeof startIngress): void {
    const { byHash } = this;
    const routes: RouteTable = {
      resolveHash(hash: string): Route {
        const lane = byHash.get(hash);
        if (lane === undefined) return { kind: "none", hash };
        lane.routed++;
        lane.onChange?.();
        return { kind: "local", hash, socketPath: lane.socketPath };
      },
    };
    this.ingress = start({
      config: { port: 0, hostname: "127.0.0.1", member: "fuzz", maxIdlePerUpstream: 0 },
      routes,
      inflight: this.inflight,
      log: (level, event, fields) => {
        if (level === "error" && this.ingressErrors.length < 20)
          this.ingressErrors.push(`${event} ${JSON.stringify(fields ?? {})}`.slice(0, 2000));
      },
    });
  }

  /** The reference's parse of `bytes`. */
  private reference(bytes: string): Promise<ConnReport & { stuck: boolean }> {
    if (this.nodeGone) throw new Error(this.nodeGone);
    const id = this.nextId++;
    const { promise, resolve } = Promise.withResolvers<ConnReport & { stuck: boolean }>();
    this.waiting.set(id, resolve);
    this.node.stdin.write(`${JSON.stringify({ i: id, b: bytes })}\n`);
    this.node.stdin.flush();
    return promise;
  }

  /** Runs one case on a lane (default: the first; don't share a lane between concurrent cases). */
  async runCase(fuzzCase: FuzzCase, laneIndex = 0): Promise<CaseResult> {
    const lane = this.lanes[laneIndex] as Lane;
    const sent = fuzzCase.bytes.replaceAll(CANON_HASH, lane.hash);
    const ref = await this.reference(sent);
    let need = 0;
    for (const req of ref.reqs) if (req.done) need++;
    lane.routed = 0;
    lane.closed = 0;
    lane.reports = [];
    const client = await this.exchange(sent, fuzzCase.splits, lane, Math.max(1, need));
    const settled = await this.settle(lane);
    lane.onChange = undefined;
    const reports = lane.reports.sort((a, b) => a.c - b.c);
    const findings = judge(ref, reports, client.responses, sent, lane.hash);
    if (!settled)
      findings.push({
        cls: "harness:upstream-not-closed",
        message: `${lane.routed} requests routed, ${lane.closed} upstream connections closed after ${this.settleMs} ms`,
      });
    else if (lane.closed > lane.routed)
      findings.push({
        cls: "harness:stale-upstream-report",
        message: `${lane.routed} requests routed, yet ${lane.closed} upstream connections reported: one of the lane's previous case (${lane.previous}) came late`,
      });
    lane.previous = fuzzCase.index;
    if (ref.stuck) findings.push({ cls: "harness:reference-stuck", message: "the reference never closed" });
    if (client.stuck)
      findings.push({
        cls: "harness:client-not-closed",
        message: `the ingress kept the client connection ${this.settleMs} ms after the engine's FIN`,
      });
    let forwarded = 0;
    for (const report of reports) forwarded += report.reqs.length;
    return {
      fuzzCase,
      sent,
      forwarded,
      referenceRequests: ref.reqs.length,
      referenceError: ref.err?.code,
      responses: client.responses,
      ended: client.ended,
      findings,
    };
  }

  /**
   * Sends the bytes to the ingress and reads its answers until the case is over (see the top). The
   * engine ends its side with a FIN and waits for the ingress to close: the ingress reads everything
   * sent before the FIN first, so once the connection is closed every request of the case has been
   * routed (and counted) and none can reach the upstream during a later case.
   */
  private async exchange(
    bytes: string,
    splits: number[],
    lane: Lane,
    need: number,
  ): Promise<{ responses: ClientResponse[]; ended: CaseResult["ended"]; stuck: boolean }> {
    const responses: ClientResponse[] = [];
    let received = "";
    let pos = 0;
    let ended: CaseResult["ended"] | undefined;
    let written = false;
    let idleTimer: Timer | undefined;
    let graceTimer: Timer | undefined;
    let pending: Buffer[] = [];
    const closed = Promise.withResolvers<void>();
    let socket: Socket<undefined> | undefined;

    const end = (how: CaseResult["ended"]): void => {
      if (ended !== undefined) return;
      ended = how;
      clearTimeout(idleTimer);
      clearTimeout(graceTimer);
      if (how !== "ingress-closed") socket?.shutdown();
    };
    const activity = (): void => {
      if (ended !== undefined) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => end("idle"), this.idleMs);
      clearTimeout(graceTimer);
      if (written && responses.length >= need && lane.closed >= lane.routed)
        graceTimer = setTimeout(() => end("answered"), this.graceMs);
    };
    const flush = (s: Socket<undefined>): void => {
      while (pending.length > 0) {
        const head = pending[0] as Buffer;
        const n = s.write(head);
        if (n < head.length) {
          pending[0] = head.subarray(Math.max(0, n));
          return;
        }
        pending.shift();
      }
    };

    lane.onChange = activity;
    socket = await Bun.connect<undefined>({
      hostname: "127.0.0.1",
      port: this.ingress.port,
      data: undefined,
      allowHalfOpen: true,
      socket: {
        data(_s, data) {
          received += data.toString("latin1");
          pos = readResponses(received, pos, responses);
          activity();
        },
        drain: (s) => flush(s),
        close() {
          end("ingress-closed");
          closed.resolve();
        },
        error() {},
      },
    });
    const buf = Buffer.from(bytes, "latin1");
    let from = 0;
    for (const at of [...splits, buf.length]) {
      if (ended !== undefined) break;
      if (at <= from) continue;
      pending.push(buf.subarray(from, at));
      flush(socket);
      from = at;
      if (at < buf.length) await Bun.sleep(1);
    }
    written = true;
    activity();
    // the ingress closes at once on a FIN, but only after reading what came before it
    let stuck = false;
    const timer = setTimeout(() => {
      stuck = true;
      socket?.terminate();
    }, this.settleMs);
    await closed.promise;
    clearTimeout(timer);
    pending = [];
    return { responses, ended: ended ?? "ingress-closed", stuck };
  }

  /**
   * Waits until the ingress has nothing in flight for the lane's hash (its side of the client
   * connection is done with the case) and every request it routed there has had its upstream
   * connection closed and reported.
   */
  private async settle(lane: Lane): Promise<boolean> {
    const settled = (): boolean => lane.closed >= lane.routed && this.inflight.count(lane.hash) === 0;
    if (settled()) return true;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const timer = setTimeout(() => resolve(false), this.settleMs);
    lane.onChange = () => {
      if (settled()) resolve(true);
    };
    // leaving the in-flight count is no event here: look again now and then
    const poll = setInterval(() => lane.onChange?.(), 5);
    const ok = await promise;
    clearTimeout(timer);
    clearInterval(poll);
    return ok;
  }

  /**
   * Runs cases [first, first + cases) of `seed` over all lanes. `onCase` sees every result (for
   * progress and printing); the summary groups findings by class with the shortest example of each.
   */
  async run(options: {
    seed: number;
    cases: number;
    first?: number;
    onCase?: (result: CaseResult) => void;
  }): Promise<RunSummary> {
    const { seed, cases } = options;
    const first = options.first ?? 0;
    const started = performance.now();
    const summary: RunSummary = {
      seed,
      cases,
      forwarded: 0,
      refused: 0,
      idle: 0,
      failing: 0,
      classes: [],
      ingressErrors: this.ingressErrors,
      ms: 0,
    };
    const classes = new Map<string, FindingClass>();
    let next = first;
    const end = first + cases;
    await Promise.all(
      this.lanes.map(async (lane) => {
        while (next < end) {
          const index = next++;
          const result = await this.runCase(generateCase(seed, index), lane.index);
          if (result.forwarded > 0) summary.forwarded++;
          else summary.refused++;
          if (result.ended === "idle") summary.idle++;
          if (result.findings.some((f) => !f.benign)) summary.failing++;
          for (const finding of result.findings) {
            const { bytes, tags } = result.fuzzCase;
            let known = classes.get(finding.cls);
            if (known === undefined) {
              known = {
                cls: finding.cls,
                benign: finding.benign === true,
                count: 0,
                example: { index, bytes, tags, message: finding.message },
                tags: new Map(),
              };
              classes.set(finding.cls, known);
            } else if (bytes.length < known.example.bytes.length)
              known.example = { index, bytes, tags, message: finding.message };
            known.count++;
            for (const tag of tags) known.tags.set(tag, (known.tags.get(tag) ?? 0) + 1);
          }
          options.onCase?.(result);
        }
      }),
    );
    summary.classes = [...classes.values()].sort((a, b) => b.count - a.count);
    summary.ms = performance.now() - started;
    return summary;
  }

  /**
   * Shrinks `bytes` while `keeps(result)` holds: drops lines, then runs of bytes, then single bytes
   * (a greedy delta debugging; each try is one case on lane 0).
   */
  async minimize(bytes: string, keeps: (result: CaseResult) => boolean, budget = 2000): Promise<string> {
    let best = bytes;
    let tries = 0;
    const attempt = async (candidate: string): Promise<boolean> => {
      if (tries++ >= budget || candidate === best || candidate.length === 0) return false;
      const result = await this.runCase({ index: -1, bytes: candidate, tags: [], splits: [] });
      if (!keeps(result)) return false;
      best = candidate;
      return true;
    };
    // whole lines (each with its line ending)
    for (let changed = true; changed && tries < budget; ) {
      changed = false;
      const lines = best.split(/(?<=\n)/);
      for (let i = lines.length - 1; i >= 0; i--) {
        if (await attempt(lines.slice(0, i).join("") + lines.slice(i + 1).join(""))) {
          changed = true;
          break;
        }
      }
    }
    // runs of bytes, halving the run length
    for (let size = Math.max(1, best.length >> 1); size >= 1 && tries < budget; size >>= 1) {
      for (let at = best.length - size; at >= 0 && tries < budget; at--) {
        if (at + size <= best.length) await attempt(best.slice(0, at) + best.slice(at + size));
      }
    }
    return best;
  }

  /** Peak resident set of this process (the ingress runs in it), bytes. */
  static peakRss(): number {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
      if (match) return Number(match[1]) * 1024;
    } catch {}
    return process.memoryUsage().rss;
  }

  async stop(): Promise<void> {
    await this.ingress?.stop(0);
    this.node?.stdin.end();
    const exited = await Promise.race([this.node?.exited, Bun.sleep(2000).then(() => "timeout")]);
    if (exited === "timeout") this.node.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Reads the final responses in `text` from `pos`; returns where the next one starts. */
function readResponses(text: string, pos: number, responses: ClientResponse[]): number {
  for (;;) {
    const headEnd = text.indexOf("\r\n\r\n", pos);
    if (headEnd < 0) return pos;
    const status = Number(text.slice(pos + 9, pos + 12));
    const head = text.slice(pos, headEnd);
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    if (status >= 100 && status < 200) {
      pos = headEnd + 4;
      continue;
    }
    const bodyLength = length ? Number(length[1]) : 0;
    if (text.length < headEnd + 4 + bodyLength) return pos;
    responses.push({
      status,
      upstream: /\r\nx-fuzz-upstream:/i.test(head),
      close: /\r\nconnection:[ \t]*close/i.test(head),
    });
    pos = headEnd + 4 + bodyLength;
  }
}

/** A finding as one line a person can paste into a reproduction: class, case, message, bytes. */
export function describeFinding(seed: number, result: CaseResult, finding: Finding): string {
  return [
    `${finding.cls}${finding.benign ? " (benign)" : ""}: ${finding.message}`,
    result.fuzzCase.index >= 0
      ? `  seed ${seed}, case ${result.fuzzCase.index}; tags ${JSON.stringify(result.fuzzCase.tags)}`
      : "  a fixed case (not generated)",
    `  bytes ${escapeBytes(result.fuzzCase.bytes)}`,
    `  reference: ${result.referenceRequests} request(s)${result.referenceError ? `, then ${result.referenceError}` : ""}; forwarded ${result.forwarded}; client got ${statusList(result)} (${result.ended})`,
  ].join("\n");
}

/** the client's responses, e.g. "[200 up, 400 ingress]" */
export function statusList(result: CaseResult): string {
  return `[${result.responses.map((r) => `${r.status} ${r.upstream ? "up" : "ingress"}`).join(", ")}]`;
}

/** Bytes (a latin1 string) as a JSON string literal with every byte outside printable ASCII escaped. */
export function escapeBytes(bytes: string): string {
  return JSON.stringify(bytes).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
