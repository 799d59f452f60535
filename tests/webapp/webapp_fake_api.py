"""A stand-in master for UI tests: serves webapp/ and canned /api/v1 answers.

Plain http.server in a daemon thread (the browser test is synchronous). It behaves like
the master where the UI can tell: static files with `Content-Security-Policy:
default-src 'self'`, bearer auth on the API (401 envelope without the right token), the
error envelope of docs/api.md, cursor paging of runs. Every API request is recorded so
tests can assert what the UI sent. The canned data carries HTML/script payloads in job
names, commands, outputs and worker ids: the UI must show them as text.
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cluster.cron import CronError, describe

WEBAPP_DIR = Path(__file__).resolve().parents[2] / "webapp"
TOKEN = "test-token-123"
READ_TOKEN = "read-only-token-456"  # role read: every change is answered 403
CSP = "default-src 'self'"
EVIL_NAME = "<img src=x onerror=alert(1)>"
EVIL_OUTPUT = "<script>alert(1)</script>"
PAST_EXPR = "0 0 0 1 1 * 2020"  # a job with no future fire: schedulable false
NEVER_REASON = "no time matches before 2100"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _defaults(name: str) -> dict[str, Any]:
    """A JobView's fields other than command and cronExpr, at their defaults."""
    return {"name": name, "timezone": "UTC", "timeout": 0, "concurrency": "forbid",
            "paused": False, "retries": 0, "retryBackoff": 10, "startingDeadline": 0,
            "catchUp": "last",
            "selector": {}, "env": {}, "createdAt": _now_ms() - 86_400_000, "user": None,
            "alerts": None,
            "nextFire": None, "schedulable": True, "reason": None, "describe": None,
            "running": [], "after": None, "downstream": []}


def _make_job(name: str, command: str, cron: str, **extra: Any) -> dict[str, Any]:
    return _worded({**_defaults(name), "command": command, "cronExpr": cron, **extra})


def _worded(job: dict[str, Any]) -> dict[str, Any]:
    """The job with the words the master gives its expression (the real describer)."""
    cron = job.get("cronExpr") or ""
    try:
        job["describe"] = describe(cron, job.get("timezone") or "UTC") if cron else None
    except CronError:
        job["describe"] = None  # the master would have refused it
    return job


def _run(run_id: str, job: str, status: str, start_ms: int, **extra: Any) -> dict[str, Any]:
    run = {"runId": run_id, "jobName": job, "worker": "w1", "command": "echo hi",
           "output": "hi\n", "err": "", "exitCode": 0, "status": status,
           "trigger": "schedule", "attempt": 1, "planTime": start_ms - 20,
           "scheduleTime": start_ms - 10, "startTime": start_ms, "endTime": start_ms + 1234,
           "outputTruncated": False}
    run.update(extra)
    return run


@dataclass
class Recorded:
    method: str
    path: str  # decoded
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeState:
    """What the fake master knows; tests may flip `unavailable` to get 503s."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    max_clock_skew_ms: int | None = 1000  # the master's --max-clock-skew-s
    requests: list[Recorded] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    unavailable: bool = False
    last_runs_error: str | None = None  # the list's lastRunsError (the run store is down)
    role: str = "admin"  # what GET /api/v1/whoami answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api_requests(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or r.path == path)]


def canned_state() -> FakeState:
    """Three jobs (one with an HTML name), 60 runs (one with a script output), 2 workers."""
    now_ms = _now_ms()
    state = FakeState()
    for job in (
        _make_job("backup", "tar czf /backup.tgz /srv && echo done", "0 3 * * *",
             timezone="Europe/Paris", nextFire=now_ms + 3_600_000, selector={"zone": "eu"},
             user="backup", alerts={"on": ["failed", "recovered"], "channels": ["ops"]},
             running=[{"runId": "r-running", "worker": "w1", "startTime": now_ms - 5000,
                       "attempt": 1, "trigger": "schedule"}]),
        _make_job(EVIL_NAME, EVIL_OUTPUT, "*/5 * * * *", nextFire=now_ms + 120_000),
        _make_job("report", "python3 /opt/report.py --all", "@daily", paused=True,
                  reason="paused"),
        _make_job("expired", "echo too late", PAST_EXPR, schedulable=False,
                  reason=NEVER_REASON),
    ):
        state.jobs[job["name"]] = job
    state.runs = [_run(f"run-{i:03d}", "backup", "succeeded", now_ms - i * 60_000)
                  for i in range(1, 61)]
    state.runs[0] = _run("run-evil", EVIL_NAME, "failed", now_ms - 30_000,
                         output=EVIL_OUTPUT, err="<b>bold?</b>", exitCode=1)
    state.runs[1]["status"] = "timeout"
    state.workers = [
        {"id": "w1", "host": "node-a", "pid": 4242, "labels": {"zone": "eu", "disk": "ssd"},
         "version": "0.1.0", "startedAt": now_ms - 7_200_000, "running": 1, "capacity": 8,
         "wallClock": now_ms, "lastSeen": now_ms - 2000, "skewMs": 12},
        {"id": "<i>w2</i>", "host": "node-b", "pid": 77, "labels": {}, "version": "0.1.0",
         "startedAt": now_ms - 600_000, "running": 0, "capacity": 4, "wallClock": now_ms,
         "lastSeen": now_ms - 1000, "skewMs": 2500},
    ]
    state.audit = [
        {"id": f"{now_ms - i * 60_000:016d}-{i:016x}", "time": now_ms - i * 60_000,
         "token": token, "role": role, "action": action, "job": job, "via": "api",
         "change": change}
        for i, (token, role, action, job, change) in enumerate([
            ("ci", "operate", "kill", "backup", {"runId": "r-running"}),
            (EVIL_NAME, "admin", "put", EVIL_NAME,
             {"created": True, "spec": {"command": EVIL_OUTPUT, "cronExpr": "*/5 * * * *"}}),
            ("boss", "admin", "put", "backup",
             {"created": False, "spec": {"command": "tar", "cronExpr": "0 3 * * *"}}),
            ("ci", "operate", "pause", "report", {}),
        ])]
    return state


class _Handler(BaseHTTPRequestHandler):
    state: FakeState  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        if not url.path.startswith("/api/"):
            self._static(url.path)
            return
        record = self._record(method, url)
        authorization = self.headers.get("Authorization")
        if authorization == f"Bearer {READ_TOKEN}" and (
                method != "GET" or url.path.startswith("/api/v1/alert-channels")):
            self._error(403, "forbidden", "token 'viewer' has role read; this needs role "
                                          + ("admin" if method in ("PUT", "DELETE") else "operate"))
        elif authorization not in (f"Bearer {TOKEN}", f"Bearer {READ_TOKEN}"):
            self._error(401, "unauthorized", "missing or wrong bearer token")
        elif self.state.unavailable:
            self._error(503, "unavailable", "etcd cannot be reached")
        else:
            status, body = _answer(self.state, record)
            self._json(status, body)

    def _record(self, method: str, url: Any) -> Recorded:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        record = Recorded(method, unquote(url.path),
                          {k: v[0] for k, v in parse_qs(url.query).items()},
                          {k.lower(): v for k, v in self.headers.items()},
                          json.loads(raw) if raw else None)
        with self.state.lock:
            self.state.requests.append(record)
        return record

    def _static(self, path: str) -> None:
        name = "index.html" if path == "/" else path.lstrip("/")
        if name.startswith("static/"):  # as the master: files below webapp/ (vendor/)
            name = name.removeprefix("static/")
            parts = name.split("/")
            nested = any(p in ("", ".", "..") or p.startswith(".") for p in parts)
        else:
            nested = "/" in name
        file = WEBAPP_DIR / name
        if nested or not file.is_file():
            self._send(404, b"not found", "text/plain")
            return
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".js"):
            ctype = "text/javascript"
        self._send(200, file.read_bytes(), f"{ctype}; charset=utf-8")

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _error(self, status: int, code: str, message: str, field: str | None = None) -> None:
        error = {"code": code, "message": message}
        if field:
            error["field"] = field
        self._json(status, {"error": error})

    def _send(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


_JOB_ACTION = re.compile(r"/api/v1/jobs/([^/]+)/(run|kill|pause|resume)")
_JOB = re.compile(r"/api/v1/jobs/([^/]+)")
_DURATIONS = re.compile(r"/api/v1/jobs/([^/]+)/durations")
_RUN = re.compile(r"/api/v1/runs/([^/]+)")
_PAGE = 50


def _answer(state: FakeState, req: Recorded) -> tuple[int, Any]:
    """(status, JSON) for one API request, following docs/api.md."""
    path = req.path
    if (req.method, path) == ("GET", "/api/v1/jobs"):
        return _jobs_page(state, req.query)
    if (req.method, path) == ("GET", "/api/v1/runs"):
        return 200, _runs_page(state, req.query)
    if (req.method, path) == ("GET", "/api/v1/workers"):
        return 200, {"workers": state.workers, "maxClockSkewMs": state.max_clock_skew_ms}
    if (req.method, path) == ("GET", "/api/v1/whoami"):
        return 200, {"name": "fake-" + state.role, "role": state.role}
    if (req.method, path) == ("GET", "/api/v1/audit"):
        return 200, _audit_page(state, req.query)
    if (req.method, path) == ("GET", "/api/v1/stats"):
        return _stats(state, req.query)
    if (req.method, path) == ("GET", "/api/v1/alert-channels"):  # admin only
        return 200, {"channels": [
            {"name": "<b>ops</b>", "type": "webhook", "url": "https://hooks.example/x",
             "hasSecret": True},
            {"name": "mail", "type": "email", "host": "smtp.example", "port": 587,
             "from": "cron@example.org", "to": ["ops@example.org"]}]}
    if req.method == "POST" and path.startswith("/api/v1/alert-channels/") \
            and path.endswith("/test"):
        return 202, {"channel": path.split("/")[4], "eventId": "test:1:ab"}
    if (req.method, path) == ("GET", "/api/v1/cron/preview"):
        return _preview(req.query)
    if req.method == "GET" and (match := _DURATIONS.fullmatch(path)):
        return 200, _durations(state, match[1], int(req.query.get("limit", "200")))
    if match := _JOB_ACTION.fullmatch(path):
        return _job_action(state, req.method, match[1], match[2], req.body)
    if match := _RUN.fullmatch(path):
        found = [r for r in state.runs if r["runId"] == match[1]]
        return (200, {"run": found[0]}) if found else _not_found("run", match[1])
    if match := _JOB.fullmatch(path):
        return _job_route(state, req.method, match[1], req.body)
    return 404, {"error": {"code": "not_found", "message": f"no route {path}"}}


def _jobs_list(state: FakeState) -> dict[str, Any]:
    """Each job with its newest run (by start, or planned time), as the master lists them."""
    newest: dict[str, dict[str, Any]] = {}
    if state.last_runs_error is None:
        for r in state.runs:
            when = r["startTime"] or r["scheduleTime"]
            kept = newest.get(r["jobName"])
            if kept is None or when > (kept["startTime"] or kept["scheduleTime"]):
                newest[r["jobName"]] = r
    last = {job: _summary(r) for job, r in newest.items()}
    return {"jobs": [{**_with_downstream(state, j), "lastRun": last.get(j["name"])}
                     for j in sorted(state.jobs.values(), key=lambda j: j["name"])],
            "lastRunsError": state.last_runs_error}


def _durations(state: FakeState, job: str, limit: int) -> dict[str, Any]:
    """A job's newest runs without outputs, newest first, as the master answers them."""
    runs = sorted((r for r in state.runs if r["jobName"] == job),
                  key=lambda r: -(r["startTime"] or r["scheduleTime"]))[:limit]
    return {"job": job, "runs": [_summary(r) for r in runs]}


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    """A run as `lastRun` and the durations list give it: no outputs."""
    return {"runId": r["runId"], "status": r["status"], "trigger": r["trigger"],
            "scheduleTime": r["scheduleTime"], "startTime": r["startTime"],
            "endTime": r["endTime"],
            "durationMs": None if r["startTime"] is None or r["endTime"] is None
            else r["endTime"] - r["startTime"]}


_PAGED = ("limit", "cursor", "q", "state")


def _jobs_page(state: FakeState, query: dict[str, str]) -> tuple[int, Any]:
    """The whole list, or (any paging parameter) one page of it filtered as the master
    does: ``q`` in the name, command or words, any case; ``state``; ``limit`` after ``cursor``."""
    whole = _jobs_list(state)
    if not any(name in query for name in _PAGED):
        return 200, whole
    limit = int(query.get("limit", "100"))
    if not 1 <= limit <= 1000:
        return 400, {"error": {"code": "bad_request", "message": "limit: 1 to 1000",
                               "field": "limit"}}
    needle = query.get("q", "").casefold()
    kept = {"": lambda j: True, "paused": lambda j: j["paused"],
            "running": lambda j: bool(j["running"]),
            "unschedulable": lambda j: j["schedulable"] is False,
            "failed": lambda j: (j["lastRun"] or {}).get("status") in (
                "failed", "timeout", "lost", "killed")}[query.get("state", "")]
    picked = [j for j in whole["jobs"] if kept(j) and (
        needle in j["name"].casefold() or needle in j["command"].casefold()
        or needle in (j["describe"] or "").casefold())]
    cursor = query.get("cursor")
    after = [j for j in picked if cursor is None or j["name"] > cursor]
    page = after[:limit]
    return 200, {**whole, "jobs": page, "total": len(picked),
                 "nextCursor": page[-1]["name"] if len(after) > limit else None}


def _not_found(kind: str, name: str) -> tuple[int, Any]:
    return 404, {"error": {"code": "not_found", "message": f'{kind} "{name}" does not exist'}}


def _runs_page(state: FakeState, query: dict[str, str]) -> dict[str, Any]:
    since, until = int(query.get("since", 0)), int(query.get("until", 2**53))
    statuses = query["status"].split(",") if "status" in query else None
    runs = [r for r in state.runs
            if query.get("job") in (None, r["jobName"])
            and (statuses is None or r["status"] in statuses)
            and since <= (r["startTime"] or r["scheduleTime"]) < until]
    offset = int(query.get("cursor", "0"))
    limit = int(query.get("limit", str(_PAGE)))
    page = runs[offset:offset + limit]
    more = offset + limit < len(runs)
    return {"runs": page, "nextCursor": str(offset + limit) if more else None}


STATS_BUCKETS = 60  # the 1h window's, as the master answers (docs/api.md)


def _stats(state: FakeState, query: dict[str, str]) -> tuple[int, Any]:
    """The dashboard's answer, computed from the canned runs like the master would."""
    window = query.get("window", "24h")
    bucket_s = {"1h": 60, "24h": 300, "7d": 3600}.get(window)
    if bucket_s is None:
        return 400, {"error": {"code": "bad_request", "field": "window",
                               "message": "one of 1h, 24h, 7d"}}
    last = _now_ms() // (bucket_s * 1000)
    n = {"1h": 60, "24h": 288, "7d": 168}[window]
    buckets = [(last - n + 1 + i) * bucket_s * 1000 for i in range(n)]
    runs: dict[str, list[int]] = {}
    p50: list[int | None] = [None] * n
    failures: dict[str, int] = {}
    for r in state.runs:
        i = ((r["startTime"] or r["scheduleTime"]) - buckets[0]) // (bucket_s * 1000)
        if 0 <= i < n:
            runs.setdefault(r["status"], [0] * n)[i] += 1
            p50[i] = 20
            if r["status"] in ("failed", "timeout", "lost", "killed"):
                failures[r["jobName"]] = failures.get(r["jobName"], 0) + 1
    top = sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return 200, {
        "window": window, "bucketS": bucket_s,
        "counts": {"jobs": len(state.jobs),
                   "pausedJobs": sum(1 for j in state.jobs.values() if j["paused"]),
                   "running": sum(len(j["running"]) for j in state.jobs.values()),
                   "failures24h": sum(failures.values()), "workers": len(state.workers)},
        "buckets": buckets, "runs": runs, "latenessP50Ms": p50, "latenessP99Ms": p50,
        "topFailing": [{"job": job, "failures": k} for job, k in top],
        "failureStatuses": ["failed", "timeout", "lost", "killed"],
        "partial": False, "completeFrom": None}


def _audit_page(state: FakeState, query: dict[str, str]) -> dict[str, Any]:
    entries = [e for e in state.audit
               if query.get("job") in (None, e["job"]) and query.get("token") in (None, e["token"])]
    offset = int(query.get("cursor", "0"))
    limit = int(query.get("limit", str(_PAGE)))
    more = offset + limit < len(entries)
    return {"entries": entries[offset:offset + limit],
            "nextCursor": str(offset + limit) if more else None, "partial": False}


def _preview(query: dict[str, str]) -> tuple[int, Any]:
    expr = query.get("expr", "")
    if len(expr.split()) not in (5, 6, 7) and not expr.startswith("@"):
        return 400, {"error": {"code": "bad_request", "field": "expr",
                               "message": f"expr: expected 5, 6 or 7 fields, "
                                          f"got {len(expr.split())}"}}
    count = int(query.get("n", "5"))
    tz = query.get("tz") or "UTC"
    try:
        words = describe(expr, tz)
    except CronError as err:
        return 400, {"error": {"code": "bad_request", "field": "expr",
                               "message": f"expr: {err.reason}"}}
    if expr == PAST_EXPR:
        return 200, {"expr": expr, "timezone": tz, "describe": words, "times": [],
                     "reason": NEVER_REASON}
    return 200, {"expr": expr, "timezone": tz, "describe": words,
                 "times": [_now_ms() + (i + 1) * 300_000 for i in range(count)],
                 "reason": None}


def _job_route(state: FakeState, method: str, name: str, body: Any) -> tuple[int, Any]:
    if method == "PUT":
        return _put(state, name, body)
    if name not in state.jobs:
        return _not_found("job", name)
    if method == "DELETE":
        return 200, {"job": state.jobs.pop(name)}
    return 200, {"job": _with_downstream(state, state.jobs[name])}


def _with_downstream(state: FakeState, job: dict[str, Any]) -> dict[str, Any]:
    """The jobs whose `after` names this one, as the master lists them."""
    return {**job, "downstream": [{"job": j["name"], "on": j["after"]["on"]}
                                  for j in sorted(state.jobs.values(), key=lambda j: j["name"])
                                  if (j.get("after") or {}).get("job") == job["name"]]}


def _put(state: FakeState, name: str, body: Any) -> tuple[int, Any]:
    cron = str(body.get("cronExpr", ""))
    chained_only = not cron and body.get("after")
    if len(cron.split()) not in (5, 6, 7) and not cron.startswith("@") and not chained_only:
        return 400, {"error": {"code": "bad_request", "field": "cronExpr",
                               "message": f"cronExpr: expected 5, 6 or 7 fields, "
                                          f"got {len(cron.split())}"}}
    previous = state.jobs.get(name)
    job = _worded({**_defaults(name), **body, "nextFire": _now_ms() + 300_000, "running": []})
    warnings = []
    if cron == PAST_EXPR:
        job.update(nextFire=None, schedulable=False, reason=NEVER_REASON)
        warnings = [f"job {name!r} will never fire: {NEVER_REASON} (cronExpr {cron!r}, "
                    f"timezone {job['timezone']!r})"]
    state.jobs[name] = job
    return (200 if previous else 201), {"job": job, "previous": previous,
                                        "warnings": warnings}


def _job_action(state: FakeState, method: str, name: str, action: str,
                body: Any) -> tuple[int, Any]:
    if method != "POST":
        return 405, {"error": {"code": "method_not_allowed", "message": "POST only"}}
    if name not in state.jobs:
        return _not_found("job", name)
    job = state.jobs[name]
    if action == "run":
        return 202, {"job": name, "runId": "manual-0001"}
    if action == "kill":
        return 202, {"job": name, "runId": (body or {}).get("runId")}
    job["paused"] = action == "pause"
    return 200, {"job": job}


class FakeMaster:
    """Start/stop the stand-in master; `url` is its base URL."""

    def __init__(self, state: FakeState) -> None:
        handler = type("Handler", (_Handler,), {"state": state})
        self.state = state
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeMaster:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
