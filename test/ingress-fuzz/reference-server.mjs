/**
 * The reference side of the ingress differential fuzz (test/ingress-fuzz/engine.ts), run by Node
 * (`node reference-server.mjs <dir> <lanes>`) so that requests are parsed by node:http's llhttp in
 * its default strict mode, an HTTP/1.1 parser independent of the ingress's own.
 *
 * Two roles, one parser configuration:
 * - upstream: one node:http server per lane on <dir>/up-<lane>.sock. The ingress forwards to them,
 *   and each reports, when a connection closes, every request parsed on it (and the parse error,
 *   if any) as one JSON line on stdout: {"k":"up","l":lane,"c":seq,"reqs":[...],"err":...}.
 * - reference: the original bytes arrive on stdin as {"i":id,"b":"<latin1 string>"} lines; each is
 *   fed to the same kind of server through an in-memory socket (a Duplex emitted as 'connection',
 *   then end of input), and the result comes back as {"k":"ref","i":id,"reqs":[...],"err":...}.
 *
 * A request is {m, u, v, h: rawHeaders, t: rawTrailers, n: body bytes, done: body complete}; an
 * error is {code, reason, at: offset in the read it was found in, raw: the start of that read}.
 * Every request is answered 200 (with `x-fuzz-upstream: 1`, so the engine can tell these answers
 * from the ingress's own) and an empty body once its body is read. requireHostHeader is off so that
 * every parsed request is reported (the oracle applies the rule), and 'checkExpectation', 'upgrade'
 * and 'connect' are handled so that no parsed request goes unreported.
 */
import { rmSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Duplex } from "node:stream";

const [dir, lanesArg] = process.argv.slice(2);
const lanes = Number(lanesArg);
const STATE = Symbol("fuzz-state");

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function makeServer() {
  const server = http.createServer({ requireHostHeader: false, insecureHTTPParser: false });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 60_000;
  server.requestTimeout = 0;
  server.on("request", onRequest);
  server.on("checkExpectation", onRequest);
  // after an upgrade request (or CONNECT) node stops parsing HTTP on the connection: report and close
  const upgraded = (req, socket) => {
    record(req).upgrade = true;
    socket.destroy();
  };
  server.on("upgrade", upgraded);
  server.on("connect", upgraded);
  server.on("clientError", (error, socket) => {
    const state = socket[STATE];
    if (state && state.err === null) {
      const raw = error.rawPacket ? Buffer.from(error.rawPacket).toString("latin1").slice(0, 200) : undefined;
      state.err = {
        code: error.code ?? "ERR",
        reason: error.reason ?? error.message,
        at: error.bytesParsed,
        raw,
      };
    }
    socket.destroy();
  });
  return server;
}

function record(req) {
  const entry = {
    m: req.method,
    u: req.url,
    v: req.httpVersion,
    h: req.rawHeaders,
    t: null,
    n: 0,
    done: false,
  };
  req.socket[STATE]?.reqs.push({ entry, req });
  return entry;
}

function onRequest(req, res) {
  const entry = record(req);
  req.on("data", (chunk) => {
    entry.n += chunk.length;
  });
  req.on("end", () => {
    res.writeHead(200, { "content-length": "0", "x-fuzz-upstream": "1" });
    res.end();
  });
  req.on("error", () => {});
}

/**
 * What the parser saw, read when the connection closes: req.complete is set by the parser as the
 * message ends (a parse error later in the same read destroys the socket before 'end' is emitted),
 * and body bytes still buffered in the request stream count as received.
 */
function summary(state) {
  const reqs = state.reqs.map(({ entry, req }) => {
    entry.done = req.complete === true && entry.upgrade !== true;
    entry.n += req.readableLength ?? 0;
    entry.t = req.complete ? req.rawTrailers : null;
    return entry;
  });
  return { reqs, err: state.err };
}

// ---- upstream servers, one per lane ----

let connections = 0;
for (let lane = 0; lane < lanes; lane++) {
  const server = makeServer();
  server.on("connection", (socket) => {
    const state = { reqs: [], err: null };
    socket[STATE] = state;
    const c = connections++;
    socket.on("close", () => emit({ k: "up", l: lane, c, ...summary(state) }));
  });
  const path = join(dir, `up-${lane}.sock`);
  rmSync(path, { force: true });
  server.listen(path);
}

// ---- reference: the original bytes through an in-memory socket ----

const reference = makeServer();
const refPath = join(dir, "ref.sock");
rmSync(refPath, { force: true });
reference.listen(refPath); // listening sets up the server's connection tracking, as for a real socket

let pending = 0;
let inputEnded = false;

function parseReference(id, bytes) {
  const state = { reqs: [], err: null };
  let reported = false;
  const socket = new Duplex({
    allowHalfOpen: true,
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  socket.remoteAddress = "127.0.0.1";
  socket[STATE] = state;
  pending++;
  const report = (stuck) => {
    if (reported) return;
    reported = true;
    pending--;
    if (pending === 0 && inputEnded) process.exit(0);
    clearTimeout(timer);
    emit({ k: "ref", i: id, ...summary(state), stuck });
  };
  // everything here runs in a few ticks; the timer only guards against a socket that never closes
  const timer = setTimeout(() => {
    report(true);
    socket.destroy();
  }, 5000);
  socket.on("close", () => setImmediate(() => report(false)));
  reference.emit("connection", socket);
  socket.push(Buffer.from(bytes, "latin1"));
  socket.push(null);
}

const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  if (line === "") return;
  const { i, b } = JSON.parse(line);
  parseReference(i, b);
});
// the harness ends stdin to stop this process: answer what is under way first
input.on("close", () => {
  inputEnded = true;
  if (pending === 0) process.exit(0);
});

emit({ k: "ready" });
