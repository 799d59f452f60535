"""What a run's process does when its worker dies before committing it to start.

A bash run waits for its worker's word before it starts its command (``start_at``):
the worker first marks the run ``started`` in etcd (``start_marks``), then writes the
word. If the worker dies (SIGKILL, a crash, OOM) before the word came, the process sees
EOF instead and runs this script, which settles the run with etcd itself, as the worker
would have:

- its ``running`` key already says ``started`` (the mark landed, the word did not):
  the survivors will treat the run as started, so it must run: exit 0;
- it still says ``claimed``: set it to ``orphaned`` (started, by itself) by a
  compare-and-set on the key's revision, and run if that held. The survivors decide on the key's last value when
  its lease expires, so etcd's order settles who runs it: this process or, if the key
  was gone or changed first, a survivor (``Fire.recovers``);
- it is gone, belongs to another worker, or etcd cannot be reached in time: do not
  run (exit 1): a key that never said ``started`` is run again by a survivor.

On "run" it sleeps until the planned instant first, so the command starts on time.
Exit 0 = run the command, 1 = do not.

Why a stdlib-only script, run by path with ``python -I``: it starts in tens of
milliseconds (no gRPC, no trio), and neither the job's environment (``PYTHONPATH``,
``PYTHONHOME``) nor the job's working directory can change what it imports. It
speaks to etcd's JSON gateway (``/v3/kv/...`` on the client port, on by default since
etcd 3.4). It writes nothing: its stdout and stderr are the dead worker's pipes.

TLS and auth, as the worker has them: https with the worker's CA and client
certificate, and for a user, ``/v3/auth/authenticate`` then the token in the
``Authorization`` header. The password is read from a file (``--password-file``:
the worker's own, or one it wrote, mode 0600, at start-up): never on this command
line, which every local user can read in /proc, nor in the environment, which the
job's command inherits (it runs in this same process after ``exec``). With etcd's
``--client-cert-auth`` and auth on, etcd's gateway refuses a client certificate that
has a Common Name (it would not be used as the user): the worker checks at start-up.

Usage: ``python -I orphan.py [--ca=PATH] [--cert=PATH --key=PATH]
[--user=USER --password-file=PATH] ENDPOINTS RUNNING_KEY WORKER_ID PLANNED_MS``
(ENDPOINTS: ``host:port,...``).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

RUN, REFUSE = 0, 1
GIVE_UP_AFTER_S = 5.0  # inside the default session TTL (10 s): later, survivors decide
REQUEST_TIMEOUT_S = 2.0
CAS_ATTEMPTS = 5
CLAIMED, ORPHANED = "claimed", "orphaned"  # as cluster.presence names them


MAX_PASSWORD_BYTES = 4096
_TOKEN_REFUSED = 401  # the gateway's status for "invalid auth token" (gRPC UNAUTHENTICATED)


class Unreachable(Exception):
    """No endpoint answered."""


class Refused(Exception):
    """etcd answered with an error (``status``, its message): a setting is wrong."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class Access:
    """TLS files and credentials, as the worker's settings name them."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    user: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        return self.ca_file is not None or self.cert_file is not None

    def opener(self) -> urllib.request.OpenerDirector:
        # Straight to etcd: never through a proxy named in the job's environment.
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if self.tls:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
            handlers.append(urllib.request.HTTPSHandler(context=context))
        return urllib.request.build_opener(*handlers)


class Gateway:
    """etcd's JSON gateway over the given endpoints, tried in turn until one answers."""

    def __init__(self, endpoints: list[str], deadline: float, access: Access = Access()) -> None:
        self._endpoints = endpoints
        self._deadline = deadline
        self._access = access
        self._scheme = "https" if access.tls else "http"
        self._opener = access.opener()
        self._token: str | None = None

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>``; Refused when the last answer was an etcd
        error (wrong credentials, permission denied) and the deadline passed."""
        refused: Refused | None = None
        while time.monotonic() < self._deadline:
            for endpoint in self._endpoints:
                try:
                    return self._post(endpoint, path, body)
                except Refused as exc:  # this token or these credentials: try again
                    refused = exc
                    if exc.status == _TOKEN_REFUSED:
                        self._token = None
                except (OSError, ValueError):  # refused, timed out, not JSON: next one
                    continue
            time.sleep(0.1)
        raise refused or Unreachable(",".join(self._endpoints))

    def _post(self, endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self._access.user is not None and path != "auth/authenticate":
            if self._token is None:
                self._token = self._authenticate(endpoint)
            headers["Authorization"] = self._token
        request = urllib.request.Request(f"{self._scheme}://{endpoint}/v3/{path}",
                                         data=json.dumps(body).encode(), headers=headers)
        try:
            with self._opener.open(request, timeout=REQUEST_TIMEOUT_S) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise Refused(exc.code, _message(exc)) from None

    def _authenticate(self, endpoint: str) -> str:
        answer = self._post(endpoint, "auth/authenticate",
                            {"name": self._access.user, "password": self._access.password})
        return str(answer["token"])

    def get(self, key: str) -> dict[str, Any] | None:
        kvs = self.call("kv/range", {"key": _b64(key.encode())}).get("kvs") or []
        return kvs[0] if kvs else None

    def swap(self, key: str, mod_revision: str, value: bytes, lease: str) -> bool:
        """Put ``value`` on ``lease`` if the key was not changed since ``mod_revision``."""
        body = {
            "compare": [{"target": "MOD", "key": _b64(key.encode()), "result": "EQUAL",
                         "mod_revision": mod_revision}],
            "success": [{"request_put": {"key": _b64(key.encode()), "value": _b64(value),
                                         "lease": lease}}],
        }
        return bool(self.call("kv/txn", body).get("succeeded"))


def settle(etcd: Gateway, key: str, worker_id: str) -> int:
    """RUN if the run is (now) marked started by this worker's claim, else REFUSE."""
    for _ in range(CAS_ATTEMPTS):
        kv = etcd.get(key)
        if kv is None:
            return REFUSE
        try:
            info = json.loads(base64.b64decode(kv.get("value", "")))
        except ValueError:
            return REFUSE
        if not isinstance(info, dict) or info.get("worker") != worker_id:
            return REFUSE  # gone and claimed again by another worker
        if info.get("state") != CLAIMED:
            return RUN
        if not kv.get("lease"):
            return REFUSE  # a running key always lives on its worker's session lease
        started = json.dumps(dict(info, state=ORPHANED), separators=(",", ":"),
                             sort_keys=True).encode()
        if etcd.swap(key, kv["mod_revision"], started, kv["lease"]):
            return RUN
    return REFUSE


def _message(error: urllib.error.HTTPError) -> str:
    """etcd's words: the gateway's JSON ``message``, or the first line of a text body."""
    try:
        body = error.read(1000).decode("utf-8", "replace")
    except OSError:
        return str(error.reason)
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.strip().partition("\n")[0] or str(error.reason)


def command(etcd_endpoints: Sequence[str], *, ca_file: str | None = None,
            cert_file: str | None = None, key_file: str | None = None,
            user: str | None = None, password_file: str | None = None) -> list[str]:
    """How the worker starts this script (for ``start_at``), minus the run's arguments:
    paths and the user name only, never a secret."""
    options = {"ca": ca_file, "cert": cert_file, "key": key_file, "user": user,
               "password-file": password_file}
    return [sys.executable, "-I", __file__,
            *(f"--{name}={value}" for name, value in options.items() if value is not None),
            ",".join(etcd_endpoints)]


def parse_argv(argv: list[str]) -> tuple[Access, list[str]]:
    """Leading ``--name=value`` options, then the positional arguments.
    Raises ValueError (an unknown option, an unreadable password file)."""
    options: dict[str, str] = {}
    while argv and argv[0].startswith("--"):
        name, sep, value = argv[0][2:].partition("=")
        if not sep or name not in ("ca", "cert", "key", "user", "password-file"):
            raise ValueError(f"bad option {argv[0]!r}")
        options[name] = value
        argv = argv[1:]
    password_file = options.get("password-file")
    password = read_password(password_file) if password_file else None
    return Access(options.get("ca"), options.get("cert"), options.get("key"),
                  options.get("user"), password), argv


def read_password(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        text = file.read(MAX_PASSWORD_BYTES + 1).decode("utf-8", "replace").strip()
    if not text or len(text) > MAX_PASSWORD_BYTES:
        raise ValueError(f"{path} holds no password")
    return text


def main(argv: list[str]) -> int:
    try:
        access, args = parse_argv(argv)
        endpoints, key, worker_id, planned_ms = args[0].split(","), args[1], args[2], int(args[3])
        etcd = Gateway(endpoints, time.monotonic() + GIVE_UP_AFTER_S, access)
    except (IndexError, ValueError, OSError, ssl.SSLError):
        return REFUSE
    try:
        verdict = settle(etcd, key, worker_id)
    except (Unreachable, Refused):
        return REFUSE
    if verdict == RUN:
        time.sleep(max(0.0, planned_ms / 1000 - time.time()))
    return verdict


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
