"""The run-record store: every run's outcome, in MySQL/MariaDB or SQLite (DESIGN §7).

    async with open_store(config.db) as store:  # or a URL: "sqlite:///runs.db"
        await store.write_batch(records)
        page = await store.query(job_name="backup", limit=20)

The error tree is drawn in ``_errors``; only ``StoreUnavailable`` is worth retrying.

Who may import it: the worker's LogSink, the master's LogManager, and tests; the database
drivers load only with it. It imports nothing of ours outside ``cluster``.
"""

from cluster.config import redact_db_url as redact

from ._alerts import MAX_DELIVERY_AGE_MS, AlertOutbox, Delivery
from ._audit import AuditAction, AuditEntry
from ._backend import StoreStatistics
from ._errors import (
    InvalidAuditEntry,
    InvalidCursor,
    InvalidQuery,
    InvalidRunRecord,
    StoreAccessDenied,
    StoreCertificateError,
    StoreClosedError,
    StoreConfigError,
    StoreError,
    StoreQueryError,
    StoreSchemaError,
    StoreTlsError,
    StoreUnavailable,
)
from ._open import open_store
from ._output import KEEP_MS as OUTPUT_KEEP_MS, OutputChunk, RunOutput
from ._tls import check_tls_files
from ._record import RUN_ID_MAX_CHARS, RunRecord, RunStatus, RunTrigger
from ._settings import StoreSettings
from ._follow import FollowPage
from ._latest import LastRun
from ._stats import FAILURE_STATUSES, STATS_WINDOWS, StatsSummary, StatsWindow, TopJob
from ._rows import MAX_TEXT_BYTES
from ._store import MAX_PAGE_LIMIT, RunPage, RunStore

__all__ = [
    "AlertOutbox",
    "Delivery",
    "MAX_DELIVERY_AGE_MS",
    "OUTPUT_KEEP_MS",
    "OutputChunk",
    "RunOutput",
    "AuditAction",
    "FAILURE_STATUSES",
    "STATS_WINDOWS",
    "StatsSummary",
    "StatsWindow",
    "TopJob",
    "AuditEntry",
    "FollowPage",
    "InvalidAuditEntry",
    "MAX_PAGE_LIMIT",
    "MAX_TEXT_BYTES",
    "RUN_ID_MAX_CHARS",
    "InvalidCursor",
    "InvalidQuery",
    "InvalidRunRecord",
    "LastRun",
    "RunPage",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "RunTrigger",
    "StoreAccessDenied",
    "StoreCertificateError",
    "StoreClosedError",
    "StoreConfigError",
    "StoreError",
    "StoreQueryError",
    "StoreSchemaError",
    "StoreSettings",
    "StoreStatistics",
    "StoreTlsError",
    "StoreUnavailable",
    "check_tls_files",
    "open_store",
    "redact",
]
