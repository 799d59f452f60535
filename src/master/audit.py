"""The audit trail's logic: who an entry names, how one is made, and how a page of
entries is put together from the run store and from etcd.

Every change the master makes (job put, delete, pause, resume, run now, kill; through
/api/v1 or the seed's endpoints) carries its ``Author``; the JobManager turns it into
an ``AuditEntry`` and writes it under ``audit/<id>`` in the change's own etcd
transaction, so no change exists without its entry, whether or not the run store is
up. The AuditMover then copies entries into the store's ``audit_log`` and deletes
them from etcd. A listing therefore reads etcd first, then the store: an entry moved
in between is in the store by then (it is written there before it leaves etcd), so
none is missed, and one seen in both is shown once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cluster.keyspace import PLANNED_MS_DIGITS
from cluster.store import AuditAction, AuditEntry

from .auth import Identity

__all__ = ["AuditPage", "AuditQuery", "Author", "merge_page", "new_entry"]


@dataclass(frozen=True, slots=True)
class Author:
    """Who asks for a change, and through which door."""

    identity: Identity
    via: str  # "api" or "seed"


@dataclass(frozen=True, slots=True)
class AuditQuery:
    job: str | None = None
    token: str | None = None
    before_id: str | None = None  # from the cursor: entries older than this one
    limit: int = 50


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: str | None  # the id to page on from; None: this was the last page
    partial: bool  # the store could not be read: only entries still in etcd are listed


def new_entry(author: Author, action: AuditAction, job: str, change: dict[str, Any],
              now_ms: int) -> AuditEntry:
    """A fresh entry; its id sorts by time, and its random half makes it unique."""
    entry_id = f"{now_ms:0{PLANNED_MS_DIGITS}d}-{secrets.token_hex(8)}"
    return AuditEntry(entry_id, now_ms, author.identity.name, author.identity.role.value,
                      action, job, author.via, change)


def matches(entry: AuditEntry, query: AuditQuery) -> bool:
    return ((query.job is None or entry.job == query.job)
            and (query.token is None or entry.token == query.token)
            and (query.before_id is None or entry.entry_id < query.before_id))


def merge_page(pending: Iterable[AuditEntry], stored: Iterable[AuditEntry],
               query: AuditQuery, *, partial: bool) -> AuditPage:
    """One page, newest first, of the entries still in etcd and those in the store
    (each store read asked for ``limit + 1`` rows, so "more" is known)."""
    by_id = {e.entry_id: e for e in stored}
    by_id.update((e.entry_id, e) for e in pending if matches(e, query))
    ordered = sorted(by_id.values(), key=lambda e: e.entry_id, reverse=True)
    page = ordered[:query.limit]
    more = len(ordered) > query.limit
    return AuditPage(page, page[-1].entry_id if more else None, partial)
