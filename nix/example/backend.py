# The example backend: answers who it is. VERSION comes from its manifest's environment.
#
# It also shows the two things a service keeps outside its closure (see the README, "Secrets" and
# "State"):
# - a credential, `signing-key`, which the host maps to a file (services.hashd.credentials) and
#   systemd hands over as $CREDENTIALS_DIRECTORY/signing-key. It is read once, at start: after the
#   file changes, `hashd restart <hash|alias>` makes the program read it again. The answer names
#   the key by a fingerprint, never by its value.
# - a state directory at $STATE_DIRECTORY, which belongs to the service's name: every version of
#   example-backend sees the same files. The first version that ran on it leaves its number there
#   (stateCreatedBy), so v2 answers that v1 created its state.
# Run by hand (no credentials, no state directory), both fields are null.
import hashlib
import os

from serve import serve, sleep_from_query

VERSION = os.environ.get("VERSION", "dev")


def signing_key_id():
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    with open(os.path.join(directory, "signing-key"), "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()[:12]


def state_created_by():
    directory = os.environ.get("STATE_DIRECTORY")
    if not directory:
        return None
    path = os.path.join(directory, "created-by")
    try:
        # O_EXCL: of two versions starting at once, one writes it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(VERSION)
    except FileExistsError:
        pass
    with open(path) as f:
        return f.read().strip()


SIGNING_KEY_ID = signing_key_id()
STATE_CREATED_BY = state_created_by()


def hello(url):
    sleep_from_query(url.query)
    return 200, {
        "service": "example-backend",
        "version": VERSION,
        "signingKey": SIGNING_KEY_ID,
        "stateCreatedBy": STATE_CREATED_BY,
    }


serve({"/": hello, "/healthz": lambda url: (200, "ok\n")})
