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

Usage: ``python -I orphan.py ENDPOINTS RUNNING_KEY WORKER_ID PLANNED_MS``
(ENDPOINTS: ``host:port,...``).
"""

from __future__ import annotations

import base64
import json
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

RUN, REFUSE = 0, 1
GIVE_UP_AFTER_S = 5.0  # inside the default session TTL (10 s): later, survivors decide
REQUEST_TIMEOUT_S = 2.0
CAS_ATTEMPTS = 5
CLAIMED, ORPHANED = "claimed", "orphaned"  # as cluster.presence names them


# Straight to etcd: never through a proxy named in the job's environment (http_proxy).
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Unreachable(Exception):
    """No endpoint answered."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Gateway:
    """etcd's JSON gateway over the given endpoints, tried in turn until one answers."""

    def __init__(self, endpoints: list[str], deadline: float) -> None:
        self._endpoints = endpoints
        self._deadline = deadline

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        while time.monotonic() < self._deadline:
            for endpoint in self._endpoints:
                request = urllib.request.Request(f"http://{endpoint}/v3/kv/{path}", data=data,
                                                 headers={"Content-Type": "application/json"})
                try:
                    with _DIRECT.open(request, timeout=REQUEST_TIMEOUT_S) as answer:
                        return json.loads(answer.read())
                except (OSError, ValueError):  # refused, timed out, not JSON: next one
                    continue
            time.sleep(0.1)
        raise Unreachable(",".join(self._endpoints))

    def get(self, key: str) -> dict[str, Any] | None:
        kvs = self.call("range", {"key": _b64(key.encode())}).get("kvs") or []
        return kvs[0] if kvs else None

    def swap(self, key: str, mod_revision: str, value: bytes, lease: str) -> bool:
        """Put ``value`` on ``lease`` if the key was not changed since ``mod_revision``."""
        body = {
            "compare": [{"target": "MOD", "key": _b64(key.encode()), "result": "EQUAL",
                         "mod_revision": mod_revision}],
            "success": [{"request_put": {"key": _b64(key.encode()), "value": _b64(value),
                                         "lease": lease}}],
        }
        return bool(self.call("txn", body).get("succeeded"))


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


def command(etcd_endpoints: Sequence[str]) -> list[str]:
    """How the worker starts this script (for ``start_at``), minus the run's arguments."""
    return [sys.executable, "-I", __file__, ",".join(etcd_endpoints)]


def main(argv: list[str]) -> int:
    try:
        endpoints, key, worker_id, planned_ms = argv[0].split(","), argv[1], argv[2], int(argv[3])
    except (IndexError, ValueError):
        return REFUSE
    etcd = Gateway(endpoints, time.monotonic() + GIVE_UP_AFTER_S)
    try:
        verdict = settle(etcd, key, worker_id)
    except Unreachable:
        return REFUSE
    if verdict == RUN:
        time.sleep(max(0.0, planned_ms / 1000 - time.time()))
    return verdict


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
