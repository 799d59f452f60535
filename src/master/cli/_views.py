"""The human renderings of the API's answers: jobs, runs, workers, cron previews.

Each takes the API's JSON (camelCase, as documented) and returns text; every server
value goes through `cell` or `safe_text`, so none can drive the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ._format import (cell, duration, format_fields, format_table, local_iso, pairs_text,
                      relative, safe_text, zone_iso)

COMMAND_WIDTH: Final = 48
SKEW_WARNING_MS: Final = 1000

RUN_HEADERS: Final = ["RUN ID", "JOB", "STATUS", "TRIGGER", "ATTEMPT", "WORKER",
                      "STARTED", "DURATION", "EXIT"]
# --follow prints rows as they come, so its columns have fixed widths.
FOLLOW_WIDTHS: Final = [32, 24, 12, 8, 7, 20, 25, 9, 4]


def alerts_text(alerts: Mapping[str, Any] | None) -> str:
    if not alerts:
        return "the cluster's default"
    on = ", ".join(alerts.get("on") or []) or "no event"
    return cell(f"{on} -> {', '.join(alerts.get('channels') or []) or 'no channel'}")


def jobs_table(jobs: Sequence[Mapping[str, Any]], now_ms: int,
               last_runs_error: str | None = None) -> str:
    """One line per job: its expression and the same in words (with the zone when not
    UTC), next fire, last run, state (paused, unschedulable), running count, command.
    `last_runs_error`: why the list came without last runs (the run store is down)."""
    if not jobs:
        return "no jobs"
    rows = [[cell(j.get("name")), schedule_cell(j), cell(j.get("describe")),
             next_fire(j, now_ms), last_run(j.get("lastRun"), now_ms), job_state(j),
             str(len(j.get("running") or [])), cell(j.get("command"), COMMAND_WIDTH)]
            for j in jobs]
    table = format_table(["NAME", "SCHEDULE", "IN WORDS", "NEXT FIRE", "LAST RUN", "STATE",
                          "RUNNING", "COMMAND"], rows)
    if last_runs_error:
        table += f"\n(last runs unknown: {cell(last_runs_error)})"
    return table


def last_run(run: Mapping[str, Any] | None, now_ms: int) -> str:
    """`failed 5m ago (3.500s)`: status, when (its start, or its planned time if it
    never started), how long; `-` for none."""
    if not isinstance(run, Mapping):
        return "-"
    when = run.get("startTime") or run.get("scheduleTime")
    text = f"{cell(run.get('status'))} {relative(when, now_ms)}"
    if run.get("durationMs") is not None:
        text += f" ({duration(0, run['durationMs'])})"
    return text


def schedule_cell(job: Mapping[str, Any]) -> str:
    """The cron expression and, for a chained job, `after JOB (ON)`."""
    parts = [cell(job["cronExpr"])] if job.get("cronExpr") else []
    after = job.get("after")
    if isinstance(after, Mapping):
        parts.append(f"after {cell(after.get('job'))} ({cell(after.get('on'))})")
    return " + ".join(parts) or "-"


def chained_after(job: Mapping[str, Any]) -> str:
    after = job.get("after")
    if not isinstance(after, Mapping):
        return "none"
    return f"each {cell(after.get('on'))} run of {cell(after.get('job'))}"


def downstream_text(job: Mapping[str, Any]) -> str:
    jobs = job.get("downstream") or []
    return ", ".join(f"{cell(d.get('job'))} (on {cell(d.get('on'))})" for d in jobs) or "none"


def next_fire(job: Mapping[str, Any], now_ms: int) -> str:
    """The job's next fire time, local and relative to now; `-` if it has none
    (paused), `never: <reason>` if its expression has no future time, `none: runs only
    after JOB` for a chained job without one."""
    ms = job.get("nextFire")
    if ms is not None:
        return f"{local_iso(ms)} ({relative(ms, now_ms)})"
    if job.get("schedulable") is False:
        return f"never: {cell(job.get('reason'))}"
    after = job.get("after")
    if not job.get("cronExpr") and isinstance(after, Mapping) and not job.get("paused"):
        return f"none: runs only after {cell(after.get('job'))}"
    return "-"


def job_state(job: Mapping[str, Any]) -> str:
    """`paused`, `active`, or `unschedulable: <reason>` when no live worker can run it."""
    if job.get("paused"):
        return "paused"
    if job.get("schedulable") is False and job.get("nextFire") is not None:
        return f"unschedulable: {cell(job.get('reason'))}"
    return "active"


def describe_job(job: Mapping[str, Any], now_ms: int) -> str:
    """A job as aligned `field  value` lines, then its running instances."""
    pairs = [
        ("name", cell(job.get("name"))),
        ("command", safe_text(str(job.get("command", "")))),
        ("schedule", f"{cell(job.get('cronExpr'))} ({cell(job.get('timezone', 'UTC'))})"),
        ("in words", cell(job.get("describe"))),
        ("after", chained_after(job)),
        ("downstream", downstream_text(job)),
        ("next fire", next_fire(job, now_ms)),
        ("state", job_state(job)),
        ("concurrency", cell(job.get("concurrency"))),
        ("timeout", _seconds(job.get("timeout"), "none")),
        ("retries", f"{cell(job.get('retries', 0))} (backoff "
                    f"{_seconds(job.get('retryBackoff'), 'none')})"),
        ("starting deadline", _seconds(job.get("startingDeadline"), "no catch-up")),
        ("catch-up", cell(job.get("catchUp", "last"))),
        ("selector", cell(pairs_text(job.get("selector")))),
        ("env", cell(pairs_text(job.get("env")))),
        ("user", cell(job.get("user") or "the worker's (--run-as)")),
        ("alerts", alerts_text(job.get("alerts"))),
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


def run_row(run: Mapping[str, Any], widths: Sequence[int] | None = None) -> list[str]:
    values = [run.get("runId"), run.get("jobName"), run_status(run), run.get("trigger"),
              run.get("attempt"), run.get("worker"), local_iso(run.get("startTime")),
              duration(run.get("startTime"), run.get("endTime")), run.get("exitCode")]
    return [cell(v, widths[i] if widths else None) for i, v in enumerate(values)]


def run_status(run: Mapping[str, Any]) -> str:
    """The status; a `skipped` record that stands for several fires says how many."""
    count = run.get("skipCount")
    if run.get("status") == "skipped" and isinstance(count, int) and count > 1:
        return f"skipped×{count}"
    return cell(run.get("status"))


def runs_table(data: Mapping[str, Any]) -> str:
    runs = data.get("runs", [])
    text = format_table(RUN_HEADERS, [run_row(r) for r in runs]) if runs else "no runs"
    if data.get("nextCursor"):
        text += f"\n(more: add --cursor {cell(data['nextCursor'])})"
    return text


def audit_table(data: Mapping[str, Any]) -> str:
    """Entries newest first; the change in a few words (`--json` has all of it)."""
    entries = data.get("entries", [])
    rows = [[local_iso(e.get("time")), cell(e.get("token")), cell(e.get("role")),
             cell(e.get("action")), cell(e.get("job")), cell(e.get("via")),
             cell(_change_text(e), 60)] for e in entries]
    text = format_table(["TIME", "TOKEN", "ROLE", "ACTION", "JOB", "VIA", "CHANGE"], rows) \
        if entries else "no audit entries"
    if data.get("partial"):
        text += "\n(the run store is unavailable: only entries not yet moved out of etcd)"
    if data.get("nextCursor"):
        text += f"\n(more: add --cursor {cell(data['nextCursor'])})"
    return text


def _change_text(entry: Mapping[str, Any]) -> str:
    change = entry.get("change") or {}
    spec = change.get("spec") if isinstance(change.get("spec"), Mapping) else {}
    match entry.get("action"):
        case "put":
            verb = "created" if change.get("created") else "updated"
            return f"{verb}: {spec.get('cronExpr', '')} {spec.get('command', '')}"
        case "run" | "kill":
            return f"run {change.get('runId') or 'all'}"
        case _:
            return ""


def describe_run(run: Mapping[str, Any]) -> str:
    """One run's fields, then its output and error text in full (escaped)."""
    fields = format_fields([
        ("run id", cell(run.get("runId"))), ("job", cell(run.get("jobName"))),
        ("status", run_status(run)), ("exit code", cell(run.get("exitCode"))),
        ("trigger", f"{cell(run.get('trigger'))} (attempt {cell(run.get('attempt'))})"),
        ("worker", cell(run.get("worker"))),
        ("planned", local_iso(run.get("planTime"))),
        ("scheduled", local_iso(run.get("scheduleTime"))),
        ("started", local_iso(run.get("startTime"))),
        ("ended", local_iso(run.get("endTime"))),
        ("duration", duration(run.get("startTime"), run.get("endTime"))),
        ("command", safe_text(str(run.get("command", "")))),
        *([("skipped fires", f"{cell(run.get('skipCount'))}, planned "
            f"{local_iso(run.get('firstSkipTime'))} to {local_iso(run.get('lastSkipTime'))}")]
          if run.get("status") == "skipped" and run.get("skipCount") else []),
    ])
    sections = [fields]
    truncated = " (truncated)" if run.get("outputTruncated") else ""
    for title, key in ((f"output{truncated}", "output"), ("err", "err")):
        text = str(run.get(key) or "")
        sections.append(f"--- {title} ---\n{safe_text(text).rstrip()}" if text
                        else f"--- {title}: empty ---")
    return "\n".join(sections)


def workers_table(workers: Sequence[Mapping[str, Any]], now_ms: int,
                  limit_ms: Any = None) -> str:
    """``limit_ms``: the master's --max-clock-skew-s (an older master sends none: 1 s)."""
    limit = limit_ms if isinstance(limit_ms, int) and limit_ms > 0 else SKEW_WARNING_MS
    if not workers:
        return "no live workers"
    rows = [[cell(w.get("id")), cell(w.get("host")), cell(w.get("pid")),
             cell(pairs_text(w.get("labels")), 40),
             f"{cell(w.get('running'))}/{cell(w.get('capacity'))}",
             "seed" if w.get("seed") is True else cell(w.get("version")),
             relative(w.get("startedAt"), now_ms), relative(w.get("lastSeen"), now_ms),
             skew(w.get("skewMs"), limit)] for w in workers]
    table = format_table(["ID", "HOST", "PID", "LABELS", "RUNNING", "VERSION", "STARTED",
                          "LAST SEEN", "CLOCK SKEW"], rows)
    # What keeps a worker from taking work ("spill: disk full"), one line each, below.
    notes = [f"!! worker {cell(w.get('id'))}: {cell(p, 200)}" for w in workers
             for p in (w.get("problems") or ()) if isinstance(w.get("problems"), list)]
    return "\n".join([table, *notes])


def skew(skew_ms: Any, limit_ms: int = SKEW_WARNING_MS) -> str:
    """Signed skew; beyond the limit it gets a warning (fires may start late or early)."""
    if not isinstance(skew_ms, int | float):
        return "-"
    text = f"{skew_ms:+.0f}ms"
    return f"{text} !! above {limit_ms / 1000:g}s" if abs(skew_ms) > limit_ms else text


def preview_table(data: Mapping[str, Any], expr: str, now_ms: int) -> str:
    zone = str(data.get("timezone") or "UTC")
    times = data.get("times") or []
    if not times:
        reason = data.get("reason")
        return f"{cell(expr)} never fires again" + (f": {cell(reason)}" if reason else "")
    rows = [[str(i), zone_iso(ms, zone), local_iso(ms), relative(ms, now_ms)]
            for i, ms in enumerate(times, 1)]
    table = format_table(["#", f"TIME ({cell(zone)})", "LOCAL", "WHEN"], rows)
    words = data.get("describe")
    return f"{cell(expr)}: {cell(words)}\n{table}" if words else table
