"""``retry/<name>/<run_id>``: a retry waiting for its backoff, kept in etcd.

A run that failed (or was lost with its worker) and has attempts left is retried after
a backoff. The retry is not one worker's memory: the worker that decides it writes this
key (on a lease that outlives the wait), every worker watches ``retry/`` and plans it,
and at its due time it is claimed like a fire: the claim deletes the key and takes the
attempt's lock (``lock/<name>/<planned_ms>.<attempt>``), so exactly one worker runs it
even if the one that wrote it died during the backoff.

Backoff (``retry_due_ms``): ``retryBackoff`` doubled for each attempt after the second
(``retryBackoff * 2^(attempt - 2)`` before attempt ``attempt``), capped, and shortened by
up to ``RETRY_JITTER`` (10 %) at random so that the retries of many jobs that failed
together (a database down) do not all come back at the same instant; never lengthened.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from .backoff import exponential_s

__all__ = ["PendingRetry", "PendingRetryDecodeError", "RETRY_JITTER", "retry_due_ms",
           "retry_run_id"]

RETRY_JITTER = 0.1  # a wait is shortened by up to this fraction, never lengthened
# The retry key outlives its due time by this much: every worker down for longer
# drops the retry (its run is recorded; the next scheduled fire comes as usual).
RETRY_KEY_SLACK_S = 600


class PendingRetryDecodeError(ValueError):
    """A ``retry/`` value that is not ours."""


def retry_due_ms(now_ms: int, backoff_s: float, cap_s: float, failed_attempt: int,
                 *, rng: random.Random | None = None) -> int:
    """When attempt ``failed_attempt + 1`` is due, ``failed_attempt`` having just failed."""
    wait_s = exponential_s(backoff_s, cap_s, failed_attempt - 1)
    wait_s *= 1.0 - RETRY_JITTER * (rng or random).random()
    return now_ms + round(wait_s * 1000)


def retry_run_id(job_name: str, planned_ms: int, attempt: int) -> str:
    """The run id of attempt ``attempt`` of a fire: the same whoever decides the retry.
    A worker that dies after its run failed but before the run's record was stored is
    seen by a survivor, which records the run lost and retries it too: both write the
    same key (create only), so one retry is kept, not two."""
    seed = f"{job_name}\0{planned_ms}\0{attempt}".encode()
    return hashlib.blake2b(seed, digest_size=16, person=b"sched-retry").hexdigest()


@dataclass(frozen=True, slots=True)
class PendingRetry:
    """Attempt ``attempt`` of the fire planned at ``planned_ms``, due at ``due_ms``,
    to run as ``run_id``."""

    job_name: str
    run_id: str
    planned_ms: int
    attempt: int
    due_ms: int

    def to_bytes(self) -> bytes:
        return json.dumps({"planTime": self.planned_ms, "attempt": self.attempt,
                           "due": self.due_ms}, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, job_name: str, run_id: str, data: bytes) -> PendingRetry:
        try:
            v = json.loads(data)
            return cls(job_name, run_id, int(v["planTime"]), int(v["attempt"]), int(v["due"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise PendingRetryDecodeError(f"not a pending retry: {data[:60]!r} ({exc!r})") from None
