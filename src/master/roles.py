"""The role each operation requires: one table, read by the auth hook and written into
/openapi.json (``x-required-role``), so that the tests are generated from it.

Operations are keyed as the OpenAPI document names them: the method and the path
template (``/api/v1/jobs/{name}``). Rule of thumb: what changes nothing needs
``read`` (the seed's ``POST /job/list`` too: it only lists), what acts on runs or
schedules needs ``operate``, what creates, replaces or deletes jobs needs ``admin``.
The public endpoints (``/healthz``, the UI's files) need no token at all and are not
in the table. A routed endpoint missing from the table needs ``admin``: a route added
without a decision fails closed (and the role tests fail on it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from cluster.tokens import Role

__all__ = ["REQUIRED_ROLES", "operation_of", "required_role"]

READ, OPERATE, ADMIN = Role.READ, Role.OPERATE, Role.ADMIN

REQUIRED_ROLES: Final[Mapping[tuple[str, str], Role]] = {
    ("GET", "/api/v1/jobs"): READ,
    ("GET", "/api/v1/jobs/{name}"): READ,
    ("PUT", "/api/v1/jobs/{name}"): ADMIN,
    ("DELETE", "/api/v1/jobs/{name}"): ADMIN,
    ("POST", "/api/v1/jobs/{name}/kill"): OPERATE,
    ("POST", "/api/v1/jobs/{name}/run"): OPERATE,
    ("POST", "/api/v1/jobs/{name}/pause"): OPERATE,
    ("POST", "/api/v1/jobs/{name}/resume"): OPERATE,
    ("GET", "/api/v1/jobs/{name}/runs"): READ,
    ("GET", "/api/v1/jobs/{name}/durations"): READ,
    ("GET", "/api/v1/runs"): READ,
    ("GET", "/api/v1/runs/{runId}"): READ,
    ("GET", "/api/v1/runs/{runId}/output"): READ,
    ("GET", "/api/v1/workers"): READ,
    ("GET", "/api/v1/whoami"): READ,
    ("GET", "/api/v1/cron/preview"): READ,
    ("GET", "/api/v1/audit"): READ,
    ("GET", "/api/v1/stats"): READ,
    ("GET", "/api/v1/events"): READ,
    # Channels hold secrets and decide where failures are told: admin only, reads too.
    ("GET", "/api/v1/alert-channels"): ADMIN,
    ("GET", "/api/v1/alert-channels/{name}"): ADMIN,
    ("PUT", "/api/v1/alert-channels/{name}"): ADMIN,
    ("DELETE", "/api/v1/alert-channels/{name}"): ADMIN,
    ("POST", "/api/v1/alert-channels/{name}/test"): ADMIN,
    ("GET", "/metrics"): READ,
    ("GET", "/openapi.json"): READ,
    ("POST", "/job/save"): ADMIN,
    ("POST", "/job/delete"): ADMIN,
    ("GET", "/job/list"): READ,
    ("POST", "/job/list"): READ,
    ("POST", "/job/kill"): OPERATE,
    ("GET", "/job/log"): READ,
    ("GET", "/worker/list"): READ,
}

_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^:<>]+)>")


def operation_of(method: str, rule: str) -> tuple[str, str]:
    """(method, OpenAPI template) of a request: ``<job:name>`` becomes ``{name}``;
    HEAD is the GET it mirrors."""
    return ("GET" if method == "HEAD" else method), _VARIABLE.sub(r"{\1}", rule)


def required_role(method: str, rule: str) -> Role:
    return REQUIRED_ROLES.get(operation_of(method, rule), ADMIN)
