# Shared by backend.py and frontend.py, which sit beside it in each closure (app/) and import it.
#
# Takes the listening socket from systemd (fd 3, LISTEN_FDS=1; sd_listen_fds(3)) and serves HTTP/1.1
# on it. Without LISTEN_FDS it listens on 127.0.0.1:$PORT, for running it by hand.
# On SIGTERM it stops accepting and finishes the requests in flight before it exits, which is what
# the agent's drain (TimeoutStopSec = drainTimeoutSec) counts on.
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SD_LISTEN_FDS_START = 3


def listening_socket():
    if os.environ.get("LISTEN_FDS") == "1" and os.environ.get("LISTEN_PID") in (None, str(os.getpid())):
        # socket(fileno=...) reads family and type from the fd: AF_UNIX or AF_INET(6), SOCK_STREAM.
        return socket.socket(fileno=SD_LISTEN_FDS_START)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(os.environ.get("PORT", "8080"))))
    sock.listen(128)
    return sock


def sleep_from_query(query):
    """?sleep_ms=N holds the request for N ms (at most 60 s): in-flight work for drain demos."""
    try:
        ms = int(parse_qs(query).get("sleep_ms", ["0"])[0])
    except ValueError:
        ms = 0
    if ms > 0:
        time.sleep(min(ms, 60_000) / 1000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes = {}

    def do_GET(self):
        url = urlsplit(self.path)
        route = self.routes.get(url.path) or self.routes.get("*")
        status, body = route(url) if route else (404, {"error": "not found"})
        data = (body if isinstance(body, str) else json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        # the default names the client address, which a unix socket does not have
        sys.stderr.write("%s\n" % (format % args))


def serve(routes):
    Handler.routes = routes
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listening_socket()
    server.server_name, server.server_port = "hashd-example", 0
    server.daemon_threads = False  # server_close() then waits for requests in flight
    server.block_on_close = True

    def stop(signum, frame):
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()
