"""What the master reads under ``jobs/``: each value decoded once, each bad one said once.

Why apart from the JobManager: a list of 10,000 jobs would otherwise validate every
spec again on each read, and log every invalid one on each read; both are a cache of
the last full read, which the manager's requests (each in its caller's task) share.
Used only in the trio thread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cluster.etcd import KeyValue
from cluster.keyspace import Keyspace
from cluster.spec import JobSpec, SpecError

from .errors import InvalidStoredJob

__all__ = ["JobDecoder", "StoredJob"]

log = logging.getLogger(__name__)

_REPORTED_MAX = 1024  # invalid stored jobs remembered, so each is logged once


@dataclass(frozen=True, slots=True)
class StoredJob:
    """What etcd holds under jobs/<name>: a valid spec, or the reason it is not one."""

    name: str
    kv: KeyValue
    spec: JobSpec | None
    error: SpecError | None

    @classmethod
    def decode(cls, name: str, kv: KeyValue) -> StoredJob:
        try:
            spec = JobSpec.from_json(kv.value)
        except SpecError as exc:
            return cls(name, kv, None, exc)
        if spec.name != name:
            return cls(name, kv, None, SpecError("name", f"{spec.name!r} stored under {name!r}"))
        return cls(name, kv, spec, None)

    def valid(self) -> JobSpec:
        if self.spec is None:
            raise InvalidStoredJob(self.name, str(self.error))
        return self.spec

    def document(self) -> dict[str, Any]:
        """The stored JSON object, best effort for an invalid one."""
        if self.spec is not None:
            return self.spec.to_json()
        try:
            value = json.loads(self.kv.value)
        except (ValueError, UnicodeDecodeError):
            value = None
        return value if isinstance(value, dict) else {"name": self.name}


class JobDecoder:
    """Decodes full reads of ``jobs/``, reusing the last one's specs (module doc)."""

    def __init__(self, keyspace: Keyspace) -> None:
        self._ks = keyspace
        self._reported: set[tuple[str, int]] = set()
        # name -> (stored bytes, spec, error) of the last full read (``decode_all``)
        self._decoded: dict[str, tuple[bytes, JobSpec | None, SpecError | None]] = {}

    def decode_all(self, kvs: Iterable[KeyValue]) -> list[StoredJob]:
        """Every jobs/ key of a full read, decoded; a value whose bytes are those of the
        previous full read is not validated again. Keeps only this read's names."""
        previous, decoded = self._decoded, {}
        stored_jobs = []
        for kv in kvs:
            name = self._ks.name_from_job_key(kv.key)
            if name is None:
                continue
            hit = previous.get(name)
            if hit is not None and hit[0] == kv.value:
                stored = StoredJob(name, kv, hit[1], hit[2])
            else:
                stored = StoredJob.decode(name, kv)
            decoded[name] = (kv.value, stored.spec, stored.error)
            stored_jobs.append(stored)
        self._decoded = decoded
        return stored_jobs

    def report_invalid(self, stored: StoredJob) -> None:
        mark = (stored.name, stored.kv.mod_revision)
        if mark not in self._reported:
            if len(self._reported) >= _REPORTED_MAX:
                self._reported.clear()
            self._reported.add(mark)
            log.warning("job %r in etcd is not a valid spec (%s): not listed", stored.name,
                        stored.error)
