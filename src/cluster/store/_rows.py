"""A run record as a ``job_log`` row and back.

Why apart from the store: both directions must agree column for column with
``SELECT_LIST`` and the upsert (``_schema``), and the clipping of oversize text is a rule
of its own (DESIGN §11): caps belong upstream, but one oversize run must never make a
whole batch fail, so output, err and command are clipped to ``MAX_TEXT_BYTES`` of UTF-8
each; a row then always fits a MEDIUMTEXT column and, all three together, MariaDB's
16 MiB packet.
"""

from __future__ import annotations

from ._backend import Row
from ._record import RunRecord

__all__ = ["MAX_TEXT_BYTES", "record_from_row", "record_row"]

MAX_TEXT_BYTES = 4 * 1024 * 1024


def _storable(value: str) -> tuple[str, bool]:
    """``value`` made storable: lone surrogates replaced, clipped to MAX_TEXT_BYTES of
    UTF-8 on a character boundary. Returns it and whether it was clipped."""
    if value.isascii():
        if len(value) <= MAX_TEXT_BYTES:
            return value, False
        return value[:MAX_TEXT_BYTES], True
    data = value.encode("utf-8", "replace")  # lone surrogates become "?"
    if len(data) <= MAX_TEXT_BYTES:
        return data.decode("utf-8"), False
    return data[:MAX_TEXT_BYTES].decode("utf-8", "ignore"), True


def record_row(r: RunRecord) -> Row:
    command, _ = _storable(r.command)
    output, output_clipped = _storable(r.output)
    err, err_clipped = _storable(r.err)
    truncated = r.output_truncated or output_clipped or err_clipped
    return (
        _storable(r.run_id)[0], _storable(r.job_name)[0], _storable(r.worker)[0], command, output, err,
        r.exit_code, r.status.value, r.trigger.value, r.attempt, r.plan_time, r.schedule_time,
        r.start_time, r.end_time, int(truncated), r.skip_count, r.first_skip_time,
        r.last_skip_time, r.missed_fires, r.first_missed, r.sort_time,
    )


def record_from_row(row: Row) -> RunRecord:
    # row = (id, sort_time, run_id, job_name, ..., output_truncated): see SELECT_LIST.
    (_, _, run_id, job_name, worker, command, output, err, exit_code, status, trigger,
     attempt, plan_time, schedule_time, start_time, end_time, output_truncated,
     skip_count, first_skip_time, last_skip_time, missed_fires, first_missed) = row
    return RunRecord(
        run_id=run_id, job_name=job_name, worker=worker, command=command, output=output,
        err=err, exit_code=exit_code, status=status, trigger=trigger, attempt=int(attempt),
        plan_time=int(plan_time), schedule_time=int(schedule_time),
        start_time=None if start_time is None else int(start_time),
        end_time=None if end_time is None else int(end_time),
        output_truncated=bool(output_truncated), skip_count=int(skip_count),
        first_skip_time=None if first_skip_time is None else int(first_skip_time),
        last_skip_time=None if last_skip_time is None else int(last_skip_time),
        missed_fires=None if missed_fires is None else int(missed_fires),
        first_missed=None if first_missed is None else int(first_missed),
    )
