"""The message unions of the master's actors, defined once.

Every message is a request that carries its Reply: the HTTP handlers ``call`` the
actors (through ``ask``), and the actors answer with a value or fail the reply with
an error of ``master.errors`` (or the etcd/store error it met, mapped by ``ask``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Never

from actors import Reply
from cluster.spec import JobSpec
from cluster.store import AuditEntry, RunPage, RunRecord

from .audit import AuditQuery, Author
from .views import JobView, SaveOutcome, WorkerView

# ---------------------------------------------------------------- JobManager (etcd)


@dataclass(frozen=True, slots=True)
class ListJobs:
    reply: Reply[list[JobView]]


@dataclass(frozen=True, slots=True)
class GetJob:
    name: str
    reply: Reply[JobView]


@dataclass(frozen=True, slots=True)
class SaveJob:
    spec: JobSpec  # validated; created_at_ms as the client sent it (kept only for new jobs)
    by: Author  # every change is written with its audit entry
    reply: Reply[SaveOutcome]


@dataclass(frozen=True, slots=True)
class DeleteJob:
    name: str
    by: Author
    reply: Reply[dict[str, Any]]  # the deleted document


@dataclass(frozen=True, slots=True)
class KillJob:
    name: str
    run_id: str | None  # None: every run of the job
    by: Author
    reply: Reply[None]


@dataclass(frozen=True, slots=True)
class RunJob:
    name: str
    by: Author
    reply: Reply[str]  # the new run id


@dataclass(frozen=True, slots=True)
class SetPaused:
    name: str
    paused: bool
    by: Author
    reply: Reply[JobView]


@dataclass(frozen=True, slots=True)
class CheckEtcd:
    reply: Reply[None]


@dataclass(frozen=True, slots=True)
class PendingAudit:
    """The audit entries still in etcd (not yet moved to the run store), oldest first."""

    reply: Reply[list[AuditEntry]]


JobManagerMsg = ListJobs | GetJob | SaveJob | DeleteJob | KillJob | RunJob | SetPaused \
    | CheckEtcd | PendingAudit

# ---------------------------------------------------------------- LogManager (run store)


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Filters of a run listing; see RunStore.query."""

    job_name: str | None = None
    statuses: tuple[str, ...] = ()  # empty: any status
    since_ms: int | None = None
    until_ms: int | None = None
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class QueryRuns:
    query: RunQuery
    reply: Reply[RunPage]


@dataclass(frozen=True, slots=True)
class GetRun:
    run_id: str
    reply: Reply[RunRecord | None]


@dataclass(frozen=True, slots=True)
class QueryOffset:
    job_name: str
    offset: int
    limit: int
    reply: Reply[list[RunRecord]]


@dataclass(frozen=True, slots=True)
class Prune:
    older_than_ms: int | None
    max_per_job: int | None
    batch_size: int
    reply: Reply[int]  # records deleted


@dataclass(frozen=True, slots=True)
class PingStore:
    reply: Reply[None]


@dataclass(frozen=True, slots=True)
class WriteAudit:
    entries: tuple[AuditEntry, ...]
    reply: Reply[None]


@dataclass(frozen=True, slots=True)
class QueryAudit:
    query: AuditQuery
    reply: Reply[list[AuditEntry]]  # at most limit + 1, newest first


LogManagerMsg = QueryRuns | GetRun | QueryOffset | Prune | PingStore | WriteAudit | QueryAudit

# ---------------------------------------------------------------- WorkerManager


@dataclass(frozen=True, slots=True)
class ListWorkers:
    reply: Reply[list[WorkerView]]


WorkerManagerMsg = ListWorkers

RetentionMsg = Never  # nothing is sent to Retention; its inbox only stops it
AuditMoverMsg = Never  # nor to the AuditMover
