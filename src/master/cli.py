"""schedctl: the operator's command line for the master's HTTP API (docs/api.md).

It speaks only the documented API, over httpx with timeouts, and turns every failure
into one line on stderr and an exit code a script can branch on:

    0  success                      1  the API answered an error (404, 400, 409, 503, ...)
    2  usage error (bad arguments)  3  cannot reach the master (down, wrong --url, timeout)
    4  unauthorized (401: missing or wrong token)

Human output is aligned tables with times in local ISO-8601; `--json` prints the API's
JSON unchanged for scripts. Server data is printed with control characters escaped, so a
job's command or output cannot drive the operator's terminal.

Errors:
    Exception
     └── CliError              one line for stderr + an exit code
          ├── UsageError       (2) an argument argparse could not check (a time, a file)
          ├── ConnectError     (3) the master could not be reached
          └── ApiError         (1) an error answer: status, code, message, field
               └── AuthError   (4) 401
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TextIO, TypeAlias
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

__all__ = ["ApiError", "AuthError", "CliError", "ConnectError", "UsageError", "main"]

PROG: Final = "schedctl"
DEFAULT_URL: Final = "http://127.0.0.1:8070"
URL_ENV: Final = "SCHEDULER_URL"
TOKEN_ENV: Final = "SCHEDULER_API_TOKEN"
DEFAULT_HTTP_TIMEOUT_S: Final = 10.0
FOLLOW_INTERVAL_S: Final = 1.0
FOLLOW_FIRST_PAGE: Final = 20
FOLLOW_POLL_PAGE: Final = 100
FOLLOW_MEMORY: Final = 10_000  # run ids remembered by --follow (bounded)
COMMAND_WIDTH: Final = 48
RUN_STATUSES: Final = ("succeeded", "failed", "timeout", "killed", "lost", "skipped")
SKEW_WARNING_MS: Final = 1000

EXIT_OK: Final = 0
EXIT_API: Final = 1
EXIT_USAGE: Final = 2
EXIT_CONNECT: Final = 3
EXIT_AUTH: Final = 4
EXIT_INTERRUPTED: Final = 130


# ---------------------------------------------------------------- errors


class CliError(Exception):
    """A failure the operator sees as one line on stderr; `exit_code` says which kind."""

    exit_code: int = EXIT_API


class UsageError(CliError):
    """An argument argparse could not check: a bad time, an unreadable --file."""

    exit_code = EXIT_USAGE


class ConnectError(CliError):
    """The master could not be reached at `url` (refused, DNS, timeout, broken reply)."""

    exit_code = EXIT_CONNECT

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot connect to {url}: {reason} (is the master running?)")


class ApiError(CliError):
    """The API answered an error envelope `{"error": {code, message, field?}}`."""

    exit_code = EXIT_API

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        detail = message
        if field and not message.startswith(f"{field}:"):
            detail = f"{field}: {message}"
        super().__init__(f"{status} {code}: {detail}")


class AuthError(ApiError):
    """401: the token is missing or wrong (the API does not say which)."""

    exit_code = EXIT_AUTH

    def __str__(self) -> str:
        return f"{super().__str__()} (give --token or set {TOKEN_ENV})"


# ---------------------------------------------------------------- HTTP


ClientFactory = Callable[..., httpx.Client]


class Api:
    """The master's API over one httpx client: JSON in, JSON out, errors as CliError."""

    def __init__(self, client: httpx.Client, url: str, timeout_s: float) -> None:
        self._client = client
        self._url = url
        self._timeout_s = timeout_s

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON) of a 2xx answer; raises the matching CliError otherwise."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(method, path, params=clean, json=body)
        except httpx.UnsupportedProtocol:
            raise UsageError(f"--url {self._url!r} is not an http:// or https:// URL") from None
        except httpx.InvalidURL as err:
            raise UsageError(f"--url {self._url!r} is invalid: {err}") from None
        except httpx.RequestError as err:  # refused, DNS, timeout, broken or odd reply
            raise ConnectError(self._url, _transport_reason(err, self._timeout_s)) from None
        return response.status_code, _decode(response)

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)[1]


def _transport_reason(err: httpx.RequestError, timeout_s: float) -> str:
    if isinstance(err, httpx.ConnectTimeout):
        return f"connection timed out after {timeout_s:g} s"
    if isinstance(err, httpx.TimeoutException):
        return f"no answer within {timeout_s:g} s"
    if isinstance(err, httpx.ConnectError):
        return _ERRNO_RE.sub("", _one_line(str(err))) or "connection refused"
    return f"{type(err).__name__}: {_one_line(str(err))}"


def _decode(response: httpx.Response) -> Any:
    """The JSON of a success; the error envelope of a failure turned into ApiError."""
    try:
        data = response.json()
    except ValueError:
        data = None
    status = response.status_code
    if 200 <= status < 300:
        if data is None:
            raise ApiError(status, "bad_answer", "the master answered something not JSON")
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        error = {"code": "http_error", "message": response.reason_phrase or "no JSON error"}
    field = error.get("field")
    cls = AuthError if status == 401 else ApiError
    raise cls(status, cell(error.get("code", "error")), cell(error.get("message", "")),
              cell(field) if isinstance(field, str) else None)


def _path(*segments: str) -> str:
    """An /api/v1 path with each segment percent-encoded (names are one segment)."""
    return "/api/v1/" + "/".join(quote(s, safe="") for s in segments)


# ---------------------------------------------------------------- text and time


# C0/C1 controls (except newline and tab), DEL and bidi overrides: escaped on output.
_CONTROL_RE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BLANKS_RE: Final = re.compile(r"\s+")
_ERRNO_RE: Final = re.compile(r"^\[Errno -?\d+\]\s*")
_RELATIVE_RE: Final = re.compile(r"-((?:\d+(?:\.\d+)?[wdhms])+)")
_RELATIVE_PART_RE: Final = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_S: Final = {"w": 604_800, "d": 86_400, "h": 3600, "m": 60, "s": 1}


def safe_text(text: str) -> str:
    """Text with terminal control characters shown as escapes (newlines and tabs kept)."""
    text = text.replace("\r\n", "\n")
    return _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], text)


def _one_line(text: str) -> str:
    return safe_text(_BLANKS_RE.sub(" ", text).strip())


def cell(value: Any, width: int | None = None) -> str:
    """A table cell: one line, escaped, cut to `width` characters with an ellipsis."""
    if value is None:
        return "-"
    text = _one_line(str(value))
    if width is not None and len(text) > width:
        return text[: max(width - 1, 0)] + "…"
    return text


def parse_time_ms(text: str, now_s: float) -> int:
    """--since/--until: epoch ms, ISO-8601 (naive = local time), or relative `-1h30m`."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text == "now":
        return int(now_s * 1000)
    if match := _RELATIVE_RE.fullmatch(text):
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _RELATIVE_PART_RE.findall(match[1]))
        return int((now_s - seconds) * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"cannot read time {text!r}: give epoch ms, ISO-8601 "
                         "(2024-05-01T12:00) or relative (-1h, -30m, -2d)") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive = the operator's local time
    return int(moment.timestamp() * 1000)


def local_iso(ms: int | None) -> str:
    """Epoch ms as local ISO-8601 with offset, to the second."""
    if ms is None:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone()
    return moment.isoformat(timespec="seconds")


def zone_iso(ms: int, zone: str) -> str:
    """Epoch ms as ISO-8601 in `zone` (local time when the zone is unknown here)."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return local_iso(ms)
    return datetime.fromtimestamp(ms / 1000, tz=tz).isoformat(timespec="seconds")


def span(ms: float) -> str:
    """A length of time, two units at most: 45s, 3m 5s, 2h 10m, 4d 3h."""
    seconds = int(abs(ms) // 1000)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def relative(ms: int | None, now_ms: int) -> str:
    """`in 3m 5s` / `2h ago` / `now`."""
    if ms is None:
        return "-"
    delta = ms - now_ms
    if abs(delta) < 1000:
        return "now"
    return f"in {span(delta)}" if delta > 0 else f"{span(delta)} ago"


def duration(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None or end_ms is None:
        return "-"
    elapsed = end_ms - start_ms
    return f"{elapsed / 1000:.3f}s" if elapsed < 60_000 else span(elapsed)


def format_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One aligned row; the last column is not padded (no trailing blanks)."""
    padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
    return "  ".join([*padded, cells[-1]]).rstrip()


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns aligned on the widest cell; cells must already be one-line strings."""
    rows = [list(r) for r in rows]
    widths = [max(len(r[i]) for r in [list(headers), *rows]) for i in range(len(headers))]
    return "\n".join(format_row(r, widths) for r in [list(headers), *rows])


def format_fields(pairs: Iterable[tuple[str, str]]) -> str:
    """`key   value` lines aligned on the longest key."""
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in pairs)


def _pairs(mapping: Mapping[str, Any] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((mapping or {}).items())) or "-"


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Context:
    """What a command handler may use: the API, the output stream and the clocks."""

    api: Api
    out: TextIO
    json_mode: bool
    now_s: Callable[[], float]
    sleep: Callable[[float], None]

    def now_ms(self) -> int:
        return int(self.now_s() * 1000)

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def print_json(self, data: Any, *, compact: bool = False) -> None:
        self.print(json.dumps(data, ensure_ascii=False, indent=None if compact else 2))

    def emit(self, data: Any, render: Callable[[], str]) -> None:
        """The API's JSON under --json, else the human rendering of it."""
        if self.json_mode:
            self.print_json(data)
        else:
            self.print(render())


Handler = Callable[[Context, argparse.Namespace], None]


def cmd_jobs_list(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(_path("jobs"))
    ctx.emit(data, lambda: jobs_table(data.get("jobs", []), ctx.now_ms()))


def jobs_table(jobs: Sequence[Mapping[str, Any]], now_ms: int) -> str:
    if not jobs:
        return "no jobs"
    rows = [[cell(j.get("name")), cell(j.get("cronExpr")), cell(j.get("timezone", "UTC")),
             _next_fire(j, now_ms), "paused" if j.get("paused") else "active",
             str(len(j.get("running") or [])), cell(j.get("command"), COMMAND_WIDTH)]
            for j in jobs]
    return format_table(
        ["NAME", "SCHEDULE", "TZ", "NEXT FIRE", "STATE", "RUNNING", "COMMAND"], rows)


def _next_fire(job: Mapping[str, Any], now_ms: int) -> str:
    ms = job.get("nextFire")
    return "-" if ms is None else f"{local_iso(ms)} ({relative(ms, now_ms)})"


def cmd_jobs_get(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(_path("jobs", args.name))
    ctx.emit(data, lambda: describe_job(data["job"], ctx.now_ms()))


def describe_job(job: Mapping[str, Any], now_ms: int) -> str:
    """A job as aligned `field  value` lines, then its running instances."""
    pairs = [
        ("name", cell(job.get("name"))),
        ("command", safe_text(str(job.get("command", "")))),
        ("schedule", f"{cell(job.get('cronExpr'))} ({cell(job.get('timezone', 'UTC'))})"),
        ("next fire", _next_fire(job, now_ms)),
        ("state", "paused" if job.get("paused") else "active"),
        ("concurrency", cell(job.get("concurrency"))),
        ("timeout", _seconds(job.get("timeout"), "none")),
        ("retries", f"{cell(job.get('retries', 0))} (backoff "
                    f"{_seconds(job.get('retryBackoff'), 'none')})"),
        ("starting deadline", _seconds(job.get("startingDeadline"), "no catch-up")),
        ("selector", cell(_pairs(job.get("selector")))),
        ("env", cell(_pairs(job.get("env")))),
        ("created", local_iso(job.get("createdAt"))),
    ]
    running = job.get("running") or []
    if not running:
        return format_fields([*pairs, ("running", "none")])
    rows = [[cell(r.get("runId")), cell(r.get("worker")), local_iso(r.get("startTime")),
             cell(r.get("attempt")), cell(r.get("trigger"))] for r in running]
    table = format_table(["RUN ID", "WORKER", "STARTED", "ATTEMPT", "TRIGGER"], rows)
    return f"{format_fields(pairs)}\nrunning:\n{table}"


def _seconds(value: Any, zero: str) -> str:
    if not value:
        return f"0 ({zero})"
    return f"{value:g}s" if isinstance(value, int | float) else cell(value)


def cmd_jobs_put(ctx: Context, args: argparse.Namespace) -> None:
    status, data = ctx.api.call("PUT", _path("jobs", args.name), body=build_spec(args))
    job = data.get("job", {})
    verb = "created" if status == 201 else "updated"
    ctx.emit(data, lambda: f"{verb} job {cell(job.get('name', args.name))}; "
                           f"next fire: {_next_fire(job, ctx.now_ms())}")


# flag dest -> spec field; a flag given on the command line overrides --file.
_SPEC_FLAGS: Final = {
    "command": "command", "cron": "cronExpr", "tz": "timezone", "job_timeout_s": "timeout",
    "concurrency": "concurrency", "retries": "retries", "retry_backoff_s": "retryBackoff",
    "starting_deadline_s": "startingDeadline", "selector": "selector", "paused": "paused",
}


def build_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The PUT body: --file (if any) overlaid with every flag that was given."""
    spec = _read_spec_file(args.file) if args.file else {}
    for dest, field in _SPEC_FLAGS.items():
        value = getattr(args, dest)
        if value is not None:
            spec[field] = value
    if args.env is not None:
        spec["env"] = dict(args.env)
    missing = [f"--{flag}" for flag, field in (("command", "command"), ("cron", "cronExpr"))
               if field not in spec]
    if missing:
        raise UsageError(f"jobs put: {' and '.join(missing)} required (or give --file)")
    return spec


def _read_spec_file(path: str) -> dict[str, Any]:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        spec = json.loads(text)
    except OSError as err:
        raise UsageError(f"cannot read --file {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise UsageError(f"--file {path} is not valid JSON: {err}") from None
    if not isinstance(spec, dict):
        raise UsageError(f"--file {path} must hold a JSON object (the job spec)")
    return spec


def cmd_jobs_delete(ctx: Context, args: argparse.Namespace) -> None:
    _, data = ctx.api.call("DELETE", _path("jobs", args.name))
    ctx.emit(data, lambda: f"deleted job {cell(args.name)} "
                           "(its running instance, if any, is killed)")


def cmd_jobs_kill(ctx: Context, args: argparse.Namespace) -> None:
    body = {"runId": args.run_id} if args.run_id else None
    _, data = ctx.api.call("POST", _path("jobs", args.name, "kill"), body=body)
    target = f"run {cell(args.run_id)}" if args.run_id else "every running instance"
    ctx.emit(data, lambda: f"kill requested for job {cell(args.name)}: {target}")


def cmd_jobs_run(ctx: Context, args: argparse.Namespace) -> None:
    _, data = ctx.api.call("POST", _path("jobs", args.name, "run"))
    ctx.emit(data, lambda: f"triggered job {cell(args.name)}: run {cell(data.get('runId'))}")


def cmd_jobs_pause(ctx: Context, args: argparse.Namespace) -> None:
    _toggle(ctx, args.name, "pause", "paused")


def cmd_jobs_resume(ctx: Context, args: argparse.Namespace) -> None:
    _toggle(ctx, args.name, "resume", "resumed")


def _toggle(ctx: Context, name: str, action: str, done: str) -> None:
    _, data = ctx.api.call("POST", _path("jobs", name, action))
    ctx.emit(data, lambda: f"{done} job {cell(name)}; "
                           f"next fire: {_next_fire(data.get('job', {}), ctx.now_ms())}")


_RUN_HEADERS: Final = ["RUN ID", "JOB", "STATUS", "TRIGGER", "ATTEMPT", "WORKER",
                       "STARTED", "DURATION", "EXIT"]
# --follow prints rows as they come, so its columns have fixed widths.
_FOLLOW_WIDTHS: Final = [32, 24, 9, 8, 7, 20, 25, 9, 4]


def run_row(run: Mapping[str, Any], widths: Sequence[int] | None = None) -> list[str]:
    values = [run.get("runId"), run.get("jobName"), run.get("status"), run.get("trigger"),
              run.get("attempt"), run.get("worker"), local_iso(run.get("startTime")),
              duration(run.get("startTime"), run.get("endTime")), run.get("exitCode")]
    return [cell(v, widths[i] if widths else None) for i, v in enumerate(values)]


def _run_query(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    now_s = ctx.now_s()
    return {
        "job": args.job, "status": args.status, "cursor": args.cursor,
        "since": parse_time_ms(args.since, now_s) if args.since else None,
        "until": parse_time_ms(args.until, now_s) if args.until else None,
    }


def cmd_runs(ctx: Context, args: argparse.Namespace) -> None:
    query = _run_query(ctx, args)
    if args.follow:
        follow_runs(ctx, query, args.limit or FOLLOW_FIRST_PAGE)
        return
    data = ctx.api.get(_path("runs"), **query, limit=args.limit)
    ctx.emit(data, lambda: runs_table(data))


def runs_table(data: Mapping[str, Any]) -> str:
    runs = data.get("runs", [])
    text = format_table(_RUN_HEADERS, [run_row(r) for r in runs]) if runs else "no runs"
    if data.get("nextCursor"):
        text += f"\n(more: add --cursor {cell(data['nextCursor'])})"
    return text


def follow_runs(ctx: Context, query: dict[str, Any], first_page: int) -> None:
    """Print the newest runs oldest-first, then poll every second for new ones (Ctrl-C).

    Every poll reads the newest FOLLOW_POLL_PAGE runs; the first one prints only the
    newest `first_page` of them and silently marks the rest as seen, so later polls
    print only runs recorded since (a run is printed once, by id).
    """
    query = {**query, "cursor": None, "limit": FOLLOW_POLL_PAGE}
    seen: dict[str, None] = {}  # insertion-ordered set, trimmed to FOLLOW_MEMORY
    if not ctx.json_mode:
        ctx.print(format_row(_RUN_HEADERS, _FOLLOW_WIDTHS))
    try:
        runs = ctx.api.get(_path("runs"), **query).get("runs", [])
        _mark_seen(seen, runs[first_page:])
        while True:
            _print_new_runs(ctx, runs, seen)
            ctx.sleep(FOLLOW_INTERVAL_S)
            runs = ctx.api.get(_path("runs"), **query).get("runs", [])
    except KeyboardInterrupt:
        return  # Ctrl-C is how --follow ends: a success


def _mark_seen(seen: dict[str, None], runs: Iterable[Mapping[str, Any]]) -> None:
    for run in runs:
        seen[str(run.get("runId"))] = None


def _print_new_runs(ctx: Context, runs: list[dict[str, Any]], seen: dict[str, None]) -> None:
    for run in reversed(runs):  # the API answers newest first; a log reads oldest first
        run_id = str(run.get("runId"))
        if run_id in seen:
            continue
        seen[run_id] = None
        if ctx.json_mode:  # JSON Lines: one run per line
            ctx.print_json(run, compact=True)
        else:
            ctx.print(format_row(run_row(run, _FOLLOW_WIDTHS), _FOLLOW_WIDTHS))
    while len(seen) > FOLLOW_MEMORY:
        del seen[next(iter(seen))]


def cmd_run(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(_path("runs", args.run_id))
    ctx.emit(data, lambda: describe_run(data["run"]))


def describe_run(run: Mapping[str, Any]) -> str:
    """One run's fields, then its output and error text in full (escaped)."""
    fields = format_fields([
        ("run id", cell(run.get("runId"))), ("job", cell(run.get("jobName"))),
        ("status", cell(run.get("status"))), ("exit code", cell(run.get("exitCode"))),
        ("trigger", f"{cell(run.get('trigger'))} (attempt {cell(run.get('attempt'))})"),
        ("worker", cell(run.get("worker"))),
        ("planned", local_iso(run.get("planTime"))),
        ("scheduled", local_iso(run.get("scheduleTime"))),
        ("started", local_iso(run.get("startTime"))),
        ("ended", local_iso(run.get("endTime"))),
        ("duration", duration(run.get("startTime"), run.get("endTime"))),
        ("command", safe_text(str(run.get("command", "")))),
    ])
    sections = [fields]
    truncated = " (truncated)" if run.get("outputTruncated") else ""
    for title, key in ((f"output{truncated}", "output"), ("err", "err")):
        text = str(run.get(key) or "")
        sections.append(f"--- {title} ---\n{safe_text(text).rstrip()}" if text
                        else f"--- {title}: empty ---")
    return "\n".join(sections)


def cmd_workers(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(_path("workers"))
    ctx.emit(data, lambda: workers_table(data.get("workers", []), ctx.now_ms()))


def workers_table(workers: Sequence[Mapping[str, Any]], now_ms: int) -> str:
    if not workers:
        return "no live workers"
    rows = [[cell(w.get("id")), cell(w.get("host")), cell(w.get("pid")),
             cell(_pairs(w.get("labels")), 40),
             f"{cell(w.get('running'))}/{cell(w.get('capacity'))}", cell(w.get("version")),
             relative(w.get("startedAt"), now_ms), relative(w.get("lastSeen"), now_ms),
             skew(w.get("skewMs"))] for w in workers]
    return format_table(["ID", "HOST", "PID", "LABELS", "RUNNING", "VERSION", "STARTED",
                         "LAST SEEN", "CLOCK SKEW"], rows)


def skew(skew_ms: Any) -> str:
    """Signed skew; beyond 1 s it gets a warning (fires would be judged late or early)."""
    if not isinstance(skew_ms, int | float):
        return "-"
    text = f"{skew_ms:+.0f}ms"
    return f"{text} !! above 1s" if abs(skew_ms) > SKEW_WARNING_MS else text


def cmd_preview(ctx: Context, args: argparse.Namespace) -> None:
    data = ctx.api.get(_path("cron", "preview"), expr=args.expr, tz=args.tz, n=args.n)
    ctx.emit(data, lambda: preview_table(data, args.expr, ctx.now_ms()))


def preview_table(data: Mapping[str, Any], expr: str, now_ms: int) -> str:
    zone = str(data.get("timezone") or "UTC")
    times = data.get("times") or []
    if not times:
        return f"{cell(expr)} never fires again"
    rows = [[str(i), zone_iso(ms, zone), local_iso(ms), relative(ms, now_ms)]
            for i, ms in enumerate(times, 1)]
    return format_table(["#", f"TIME ({cell(zone)})", "LOCAL", "WHEN"], rows)


# ---------------------------------------------------------------- argument parsing


def _selector(text: str) -> dict[str, str]:
    """`k=v,k2=v2` (empty = no selector) for --selector."""
    pairs = [p for p in text.split(",") if p.strip()]
    return dict(_key_value(p) for p in pairs)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _positive_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value
    return parse


def _seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return int(value) if value.is_integer() else value


# what add_subparsers returns (no public name)
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of the epilog (exit codes, examples)."""


def _common_options() -> argparse.ArgumentParser:
    """--url/--token/--json, also accepted after the subcommand (only when given)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help=f"master URL (default: ${URL_ENV} or {DEFAULT_URL})")
    group.add_argument("--token", default=argparse.SUPPRESS,
                       help=f"API bearer token (default: ${TOKEN_ENV}; prefer the variable: "
                            "a flag shows in the process list)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print the API's JSON as-is (for scripts)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, parents=[common],
        description="Operate the Scheduler (a distributed crontab) through its master's API.",
        epilog="exit codes: 0 ok, 1 API error, 2 usage error, 3 cannot connect, "
               "4 unauthorized\n\nexamples:\n  schedctl jobs list\n"
               "  schedctl jobs put backup --command 'tar czf /b.tgz /srv' --cron '0 3 * * *'\n"
               "  schedctl runs --job backup --since -1d\n  schedctl preview '*/10 * * * * *' -n 3")
    parser.add_argument("--timeout", dest="http_timeout_s", type=_seconds_arg,
                        default=DEFAULT_HTTP_TIMEOUT_S, metavar="SECONDS",
                        help="HTTP timeout per request (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_jobs(commands, common)
    _add_runs(commands, common)
    _leaf(commands, common, "run", cmd_run, "show one run with its output and error text",
          ).add_argument("run_id", metavar="RUN_ID", help="the run's id (see `runs`)")
    _leaf(commands, common, "workers", cmd_workers,
          "list live workers: labels, load, last seen and clock skew (warned above 1 s)")
    preview = _leaf(commands, common, "preview", cmd_preview,
                    "show the next fire times of a cron expression (the master computes them)")
    preview.add_argument("expr", metavar="EXPR", help="cron expression, e.g. '*/5 * * * *'")
    preview.add_argument("--tz", help="IANA time zone (default: UTC)")
    preview.add_argument("-n", type=_positive_int(1, 100), default=5,
                         help="how many times, 1-100 (default: %(default)s)")
    return parser


def _leaf(commands: Commands, common: argparse.ArgumentParser, name: str, handler: Handler,
          help_text: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text,
                                 parents=[common])
    parser.set_defaults(handler=handler)
    return parser


def _add_jobs(commands: Commands, common: argparse.ArgumentParser) -> None:
    jobs = commands.add_parser("jobs", help="list, show, create, change and act on jobs",
                               description="List, show, create or replace, run, kill, "
                                           "pause, resume and delete jobs.",
                               parents=[common])
    sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    _leaf(sub, common, "list", cmd_jobs_list,
          "list jobs: schedule, next fire, state, running count, command")
    for name, handler, text in (
        ("get", cmd_jobs_get, "show one job's full spec, next fire and running instances"),
        ("delete", cmd_jobs_delete, "delete a job (its running instance is killed)"),
        ("run", cmd_jobs_run, "run a job now, once, whatever its schedule"),
        ("pause", cmd_jobs_pause, "pause a job: no scheduled fires until resumed"),
        ("resume", cmd_jobs_resume, "resume a paused job"),
    ):
        _leaf(sub, common, name, handler, text).add_argument(
            "name", metavar="NAME", help="job name")
    kill = _leaf(sub, common, "kill", cmd_jobs_kill,
                 "kill a job's running instances (or only one with --run-id)")
    kill.add_argument("name", metavar="NAME", help="job name")
    kill.add_argument("--run-id", help="kill only this run")
    _add_jobs_put(sub, common)


def _add_jobs_put(sub: Commands, common: argparse.ArgumentParser) -> None:
    put = _leaf(sub, common, "put", cmd_jobs_put,
                "create or replace a job. PUT replaces the whole spec: a field not given "
                "takes its default. Flags override the fields of --file.")
    put.add_argument("name", metavar="NAME", help="job name (the spec's name, if any, "
                     "must be the same)")
    put.add_argument("--file", metavar="PATH", help="JSON job spec (camelCase; '-' = stdin)")
    put.add_argument("--command", help="shell command (run with bash -c)")
    put.add_argument("--cron", metavar="EXPR", help="cron expression (5, 6 or 7 fields, "
                     "@daily..., @every 90s)")
    put.add_argument("--timezone", dest="tz", metavar="TZ", help="IANA zone (default UTC)")
    put.add_argument("--timeout", dest="job_timeout_s", type=_seconds_arg, metavar="S",
                     help="kill the run after S seconds (0 = never)")
    put.add_argument("--concurrency", choices=("allow", "forbid", "replace"),
                     help="when the previous run still runs (default forbid)")
    put.add_argument("--retries", type=_positive_int(0, 100), metavar="N",
                     help="extra attempts after a failure")
    put.add_argument("--retry-backoff", dest="retry_backoff_s", type=_seconds_arg,
                     metavar="S", help="seconds before a retry")
    put.add_argument("--starting-deadline", dest="starting_deadline_s", type=_seconds_arg,
                     metavar="S", help="how late a missed fire may still run (0 = no catch-up)")
    put.add_argument("--selector", type=_selector, metavar="K=V,...",
                     help="labels a worker must have")
    put.add_argument("--env", type=_key_value, action="append", metavar="K=V",
                     help="environment variable for the command (repeatable)")
    put.add_argument("--paused", action=argparse.BooleanOptionalAction, default=None,
                     help="create the job paused (--no-paused: active)")


def _add_runs(commands: Commands, common: argparse.ArgumentParser) -> None:
    runs = _leaf(commands, common, "runs", cmd_runs,
                 "list runs, newest first, with filters; --follow prints new runs as they "
                 "are recorded. Times: epoch ms, ISO-8601 or relative (-1h, -30m, -2d).")
    runs.add_argument("--job", metavar="NAME", help="only this job's runs")
    runs.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    runs.add_argument("--since", metavar="T", help="runs started at or after T")
    runs.add_argument("--until", metavar="T", help="runs started before T")
    runs.add_argument("--limit", type=_positive_int(1, 1000), metavar="N",
                      help="at most N runs (1-1000; API default 50)")
    runs.add_argument("--cursor", help="next page, as printed after a full page")
    runs.add_argument("-f", "--follow", action="store_true",
                      help="keep polling every second and print new runs until Ctrl-C")


def glue_negative_values(argv: Sequence[str]) -> list[str]:
    """`--since -1h` -> `--since=-1h`: argparse would take `-1h` for an option."""
    glued: list[str] = []
    items = iter(argv)
    for item in items:
        if item in ("--since", "--until"):
            value = next(items, None)
            glued.append(item if value is None else f"{item}={value}")
        else:
            glued.append(item)
    return glued


# ---------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None, *, make_client: ClientFactory = httpx.Client,
         now_s: Callable[[], float] = time.time,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Run one schedctl command; returns the exit code (never raises, never a traceback).

    `make_client(base_url=, headers=, timeout=)` builds the httpx client: tests pass one
    with an `httpx.MockTransport`.
    """
    try:
        args = build_parser().parse_args(glue_negative_values(
            sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return _run(args, make_client, now_s, sleep)
    except CliError as err:
        print(f"{PROG}: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `schedctl runs | head`: the reader left, nothing to say
        _silence_stdout()
        return EXIT_OK


def _run(args: argparse.Namespace, make_client: ClientFactory, now_s: Callable[[], float],
         sleep: Callable[[float], None]) -> int:
    url = (getattr(args, "url", None) or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    headers = {"Accept": "application/json", "User-Agent": f"{PROG}/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout_s: float = args.http_timeout_s
    try:
        client = make_client(base_url=url, headers=headers, timeout=httpx.Timeout(timeout_s))
    except (httpx.InvalidURL, ValueError, TypeError) as err:
        raise UsageError(f"--url {url!r} is invalid: {err}") from None
    with client:
        ctx = Context(Api(client, url, timeout_s), sys.stdout,
                      bool(getattr(args, "json", False)), now_s, sleep)
        args.handler(ctx, args)
    return EXIT_OK


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
