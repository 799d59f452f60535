"""``GET /api/v1/audit``: the audit trail, newest first, paged like the runs.

Any role may read it: it holds what the jobs endpoints already show (specs, run ids)
and the names of tokens, never a token. Entries come from etcd (those not yet moved)
and from the run store; etcd is read first (see ``audit``). With the store down the
answer is still 200, with the entries still in etcd and ``"partial": true``.

The cursor is opaque to clients: the id of the last entry of the page, encoded.
"""

from __future__ import annotations

import base64
import binascii

from quart import Blueprint, Response, request

from cluster.keyspace import AUDIT_ID_RE
from cluster.store import AuditEntry
from cluster.tokens import NAME_RE

from .ask import ask_jobs, ask_runs
from .audit import AuditQuery, merge_page
from .context import MasterContext
from .errors import BadRequest, StoreDown
from .inputs import check_job_name, query_int
from .responses import json_response
from .services import Services

__all__ = ["DEFAULT_AUDIT_LIMIT", "MAX_AUDIT_LIMIT", "audit_routes"]

DEFAULT_AUDIT_LIMIT = 50
MAX_AUDIT_LIMIT = 1000
_CURSOR_VERSION = "a1"


def audit_routes(ctx: MasterContext, services: Services) -> Blueprint:
    bp = Blueprint("audit", __name__, url_prefix="/api/v1")

    @bp.get("/audit")
    async def audit_log() -> Response:
        query = audit_query()
        pending: list[AuditEntry] = await ask_jobs(ctx, services.jobs.pending_audit)  # etcd first
        try:
            stored: list[AuditEntry] = await ask_runs(ctx, services.runs.query_audit, query)
            partial = False
        except StoreDown:
            stored, partial = [], True
        page = merge_page(pending, stored, query, partial=partial)
        return json_response({
            "entries": [e.to_json() for e in page.entries],
            "nextCursor": None if page.next_before is None else encode_cursor(page.next_before),
            "partial": page.partial})

    return bp


def audit_query() -> AuditQuery:
    args = request.args
    job = args.get("job")
    token = args.get("token")
    if token is not None and not NAME_RE.fullmatch(token):
        raise BadRequest("token", f"a token name matches {NAME_RE.pattern}")
    cursor = args.get("cursor")
    limit = query_int(args, "limit", default=DEFAULT_AUDIT_LIMIT, low=1, high=MAX_AUDIT_LIMIT)
    assert limit is not None
    return AuditQuery(job=None if job is None else check_job_name(job, "job"), token=token,
                      before_id=None if cursor is None else decode_cursor(cursor),
                      limit=limit)


def encode_cursor(entry_id: str) -> str:
    raw = f"{_CURSOR_VERSION}:{entry_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raw = ""
    version, _, entry_id = raw.partition(":")
    if version != _CURSOR_VERSION or not AUDIT_ID_RE.fullmatch(entry_id):
        raise BadRequest("cursor", "not a cursor this API issued (pass nextCursor back)")
    return entry_id
