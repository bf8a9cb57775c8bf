# The example frontend: calls the backend it was built against, at BACKEND_URL, a hash URL made by
# hashd's mkHashUrl (so the backend's store path is a reference of this closure), and reports both.
#
# The request goes to the local agent's ingress with the hash URL's host in the Host header:
# HASHD_INGRESS ("address:port") if set, else the URL's own host, where a name under .localhost
# means the loopback address (RFC 6761 section 6.3) without asking DNS.
import http.client
import json
import os
from urllib.parse import urlsplit

from serve import serve, sleep_from_query

VERSION = os.environ.get("VERSION", "dev")
BACKEND_URL = os.environ.get("BACKEND_URL", "")


def ingress_address(url):
    configured = os.environ.get("HASHD_INGRESS")
    if configured:
        host, _, port = configured.rpartition(":")
        return host.strip("[]"), int(port)
    host = url.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    return host, url.port or 80


def call_backend(query):
    url = urlsplit(BACKEND_URL)
    host, port = ingress_address(url)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", (url.path or "/") + ("?" + query if query else ""), headers={"Host": url.netloc})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def hello(url):
    sleep_from_query(url.query)
    report = {"service": "example-frontend", "version": VERSION, "backendUrl": BACKEND_URL}
    try:
        status, body = call_backend(url.query)
    except OSError as e:
        return 502, {**report, "error": "backend unreachable: %s" % e}
    try:
        report["backend"] = json.loads(body)
    except ValueError:
        report["backend"] = body.strip()
    report["backendStatus"] = status
    return (200 if 200 <= status < 300 else 502), report


serve({"/": hello, "/healthz": lambda url: (200, "ok\n")})
