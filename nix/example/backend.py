# The example backend: answers who it is. VERSION comes from its manifest's environment.
import os

from serve import serve, sleep_from_query

VERSION = os.environ.get("VERSION", "dev")


def hello(url):
    sleep_from_query(url.query)
    return 200, {"service": "example-backend", "version": VERSION}


serve({"/": hello, "/healthz": lambda url: (200, "ok\n")})
