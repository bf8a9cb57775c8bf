/**
 * Nix expressions for test service closures, built inside a sandbox host with no nixpkgs:
 * builtins.derivation with /bin/sh as builder and the host's python3 as the program. The server
 * takes its listening socket as fd 3 (LISTEN_FDS), answers every GET with its name, version and
 * hash, and can be told to fail, to start slowly, or to report readiness by sd_notify; GET
 * /say/<text> writes "said: <text>" to its stdout (its journal). GET /cred/<name> answers the
 * credential <name> as it was when the program started (it reads $CREDENTIALS_DIRECTORY once, as a
 * program reads its secrets); /state/write/<file>/<text>, /state/read/<file> and /state/ls use
 * $STATE_DIRECTORY.
 */
export interface TestService {
  name: string;
  version?: string;
  /** "ok", "crash" (exits 3 at start), "slow" (sleeps startDelaySec before listening/READY) */
  mode?: "ok" | "crash" | "slow";
  startDelaySec?: number;
  readiness?: { type: "accept" } | { type: "notify" } | { type: "http"; path: string };
  idleStopSec?: number;
  /** raw manifest override (for broken-manifest tests): written instead of the generated one */
  rawManifest?: string;
  environment?: Record<string, string>;
  /**
   * How the program gets its socket (manifest `socket`): fd (default) is SERVER_PY; unix and port
   * run PROXIED_SERVER_PY, which listens on $HASHD_UPSTREAM or 127.0.0.1:$PORT itself.
   */
  socketMode?: { type: "fd" } | { type: "unix" } | { type: "port"; port: number };
  /** manifest `credentials`: names the host maps to files */
  credentials?: string[];
  /** manifest `stateDirectory` */
  stateDirectory?: boolean;
}

export const SERVER_PY = String.raw`
import http.server, os, socket, sys, time

mode = os.environ.get("TEST_MODE", "ok")
if mode == "crash":
    print("test service: crashing on purpose", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "slow":
    time.sleep(float(os.environ.get("TEST_DELAY", "2")))

# What a program does with its secrets: read them once, at start.
CREDS_AT_START = {}
if os.environ.get("CREDENTIALS_DIRECTORY"):
    for name in os.listdir(os.environ["CREDENTIALS_DIRECTORY"]):
        with open(os.path.join(os.environ["CREDENTIALS_DIRECTORY"], name), "rb") as f:
            CREDS_AT_START[name] = f.read()

def state_path(name):
    return os.path.join(os.environ.get("STATE_DIRECTORY", "/nonexistent"), name)

def describe_stat(path):
    st = os.stat(path)
    return "%s uid=%d gid=%d mode=%o" % (os.path.basename(path) or path, st.st_uid, st.st_gid, st.st_mode & 0o7777)

def notify(msg):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(path)
    s.sendall(msg.encode())
    s.close()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/sleep/"):
            time.sleep(float(self.path.split("/")[2]))
        if self.path.startswith("/download/"):
            return self.download(int(self.path.split("/")[2]))
        if self.path == "/ws":
            return self.websocket_echo()
        if self.path.startswith("/say/"):
            # one line on stdout, which systemd puts in the unit's journal (hashd logs)
            print("said: %s" % self.path[len("/say/"):], flush=True)
        if self.path.startswith("/hold/"):
            return self.hold(float(self.path.split("/")[2]))
        if self.path.startswith("/read/"):
            # what this service may read of the host (hold tokens: only its own)
            try:
                body = open(self.path[len("/read"):], "rb").read()
            except Exception as e:
                body = ("error: %s\n" % e.__class__.__name__).encode()
            return self.reply(body)
        if self.path.startswith("/cred/"):
            name = self.path[len("/cred/"):]
            return self.reply(CREDS_AT_START.get(name, ("error: no credential %s" % name).encode()))
        if self.path.startswith("/state/"):
            return self.reply(self.state(self.path[len("/state/"):].split("/", 2)).encode())
        if self.path.startswith("/echo-headers"):
            body = "".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items()).encode()
            return self.reply(body)
        # rollout tests: a version that is slower (TEST_SLEEP_MS per answer) or that answers 500 to
        # TEST_FAIL_PERCENT of its requests
        if float(os.environ.get("TEST_SLEEP_MS", "0")) > 0:
            time.sleep(float(os.environ["TEST_SLEEP_MS"]) / 1000)
        if int.from_bytes(os.urandom(2), "big") % 10000 < float(os.environ.get("TEST_FAIL_PERCENT", "0")) * 100:
            failed = b"failing on purpose\n"
            self.send_response(500)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(failed)))
            self.end_headers()
            self.wfile.write(failed)
            return
        body = ("%s %s %s pid=%d uid=%d\n" % (os.environ.get("TEST_NAME"), os.environ.get("TEST_VERSION"),
                os.environ.get("HASHD_HASH"), os.getpid(), os.getuid())).encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def state(self, parts):
        try:
            if parts[0] == "write":
                with open(state_path(parts[1]), "w") as f:
                    f.write(parts[2])
                return "wrote %s as uid=%d" % (parts[1], os.getuid())
            if parts[0] == "read":
                with open(state_path(parts[1])) as f:
                    return f.read()
            if parts[0] == "ls":
                d = os.environ["STATE_DIRECTORY"]
                return "\n".join(["me uid=%d dir=%s" % (os.getuid(), d), describe_stat(d)] +
                                 [describe_stat(os.path.join(d, n)) for n in sorted(os.listdir(d))])
        except Exception as e:
            return "error: %s %s" % (e.__class__.__name__, e)
        return "error: unknown state command"
    def reply(self, body):
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def hold(self, ttl):
        # a hold on its own hash, as a service author would take it (docs/holds.md)
        import http.client, json
        class AgentConnection(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(os.environ["HASHD_AGENT_SOCKET"])
        token = open(os.environ["HASHD_HOLD_TOKEN_FILE"]).read().strip()
        conn = AgentConnection("agent")
        conn.request("POST", "/v1/holds", json.dumps({"hash": os.environ["HASHD_HASH"], "ttlSec": ttl}),
                     {"content-type": "application/json", "authorization": "Bearer " + token})
        answer = conn.getresponse()
        return self.reply(("%d %s" % (answer.status, answer.read().decode())).encode())
    def do_POST(self):
        # counts a (possibly huge) request body without keeping it
        n = int(self.headers.get("content-length", "0"))
        seen = 0
        while seen < n:
            chunk = self.rfile.read(min(1 << 20, n - seen))
            if not chunk:
                break
            seen += len(chunk)
        self.reply(("received %d\n" % seen).encode())
    def download(self, n):
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(n))
        self.end_headers()
        chunk = b"x" * (1 << 20)
        while n > 0:
            k = min(n, len(chunk))
            self.wfile.write(chunk[:k])
            n -= k
    def websocket_echo(self):
        import base64, hashlib, struct
        self.close_connection = True
        key = self.headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("upgrade", "websocket")
        self.send_header("connection", "Upgrade")
        self.send_header("sec-websocket-accept", accept)
        self.end_headers()
        self.wfile.flush()
        r = self.rfile
        while True:
            head = r.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", r.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", r.read(8))[0]
            mask = r.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(r.read(n)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                return
            out = b"echo: " + data
            hdr = bytes([0x80 | opcode])
            hdr += bytes([len(out)]) if len(out) < 126 else bytes([126]) + struct.pack(">H", len(out))
            self.wfile.write(hdr + out)
            self.wfile.flush()
    def log_message(self, *args):
        pass

if os.environ.get("LISTEN_FDS") != "1":
    print("test service: expected one socket in LISTEN_FDS", file=sys.stderr, flush=True)
    sys.exit(4)
sock = socket.socket(fileno=3)
server = http.server.ThreadingHTTPServer(sock.getsockname(), Handler, bind_and_activate=False)
server.socket = sock
notify("READY=1")
server.serve_forever()
`;

const FD_LISTEN = `if os.environ.get("LISTEN_FDS") != "1":
    print("test service: expected one socket in LISTEN_FDS", file=sys.stderr, flush=True)
    sys.exit(4)
sock = socket.socket(fileno=3)
server = http.server.ThreadingHTTPServer(sock.getsockname(), Handler, bind_and_activate=False)
server.socket = sock
`;

/** SERVER_PY for the proxied modes: it binds and listens itself (behind systemd-socket-proxyd). */
export const PROXIED_SERVER_PY = (() => {
  if (!SERVER_PY.includes(FD_LISTEN)) throw new Error("SERVER_PY changed: update FD_LISTEN");
  return SERVER_PY.replace(
    FD_LISTEN,
    `import socketserver
if os.environ.get("LISTEN_FDS"):
    print("test service: got a socket fd in a proxied mode", file=sys.stderr, flush=True)
    sys.exit(4)
# A realistic listen backlog (Python's default is 5; nginx and node use 511): systemd-socket-proxyd
# connects without blocking, so a burst beyond a full unix backlog is reset (EAGAIN).
class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128
class TcpServer(http.server.ThreadingHTTPServer):
    request_queue_size = 128
upstream = os.environ.get("HASHD_UPSTREAM")
if upstream:
    server = UnixServer(upstream, Handler)
else:
    server = TcpServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print("test service: listening on %s" % (upstream or "127.0.0.1:" + os.environ["PORT"]), flush=True)
`,
  );
})();

function nixString(s: string): string {
  return JSON.stringify(s).replace(/\$\{/g, "\\${");
}

/** A Nix expression (a derivation) for one test service. */
export function serviceExpr(s: TestService): string {
  const version = s.version ?? "1";
  const manifest = {
    schema: 1,
    name: s.name,
    exec: ["/usr/bin/python3", "@out@/bin/server.py"],
    socket: s.socketMode ?? { type: "fd" },
    readiness: s.readiness ?? { type: "accept" },
    idleStopSec: s.idleStopSec ?? 0,
    startTimeoutSec: 30,
    drainTimeoutSec: 5,
    ...(s.credentials ? { credentials: s.credentials } : {}),
    ...(s.stateDirectory ? { stateDirectory: true } : {}),
    environment: {
      TEST_NAME: s.name,
      TEST_VERSION: version,
      TEST_MODE: s.mode ?? "ok",
      TEST_DELAY: String(s.startDelaySec ?? 2),
      ...s.environment,
    },
  };
  const manifestText = s.rawManifest ?? JSON.stringify(manifest);
  return `builtins.derivation {
  name = ${nixString(`${s.name}-${version}`)};
  system = builtins.currentSystem;
  builder = "/bin/sh";
  server = ${nixString(s.socketMode && s.socketMode.type !== "fd" ? PROXIED_SERVER_PY : SERVER_PY)};
  manifest = ${nixString(manifestText)};
  args = [ "-c" ''
    export PATH=/usr/bin:/bin
    mkdir -p $out/bin $out/hashd
    printf '%s' "$server" > $out/bin/server.py
    printf '%s' "$manifest" | sed "s|@out@|$out|g" > $out/hashd/service.json
  '' ];
}`;
}
