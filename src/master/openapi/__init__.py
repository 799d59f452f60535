"""The OpenAPI 3.1 description of the master's HTTP API, written by hand.

It must stay true: responses are fuzzed against these schemas, so every shape is the
one the master produces, and every status an operation can answer is listed.
docs/api.md is the prose version. Written by hand rather than generated (DESIGN §10):
the master validates with its own checks (``cluster.spec``, ``inputs``), whose
messages name the field, and answers in its own error shapes, so a generator would
need every shape declared again as models.

Each authenticated operation carries ``x-required-role`` (and says it in its
description), taken from ``roles.REQUIRED_ROLES``, the one table the auth hook reads
too; operations that need more than ``read`` also list the 403 a weaker token gets.

Modules: ``_schemas`` (the components: what is sent and answered), ``_paths`` (the
routes, their parameters and responses); this one assembles the document.

Who may import it: the master's HTTP layer (``/openapi.json``, the role table) and tests.
It imports ``cluster.spec`` for the spec's limits and nothing of the worker.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from cluster.tokens import Role

from ..roles import REQUIRED_ROLES
from ._paths import all_paths, component_responses, error_ref
from ._schemas import (ERROR_CODES, EXAMPLE_JOB, EXAMPLE_RUN, EXAMPLE_SPEC, Schema,
                       component_schemas)

__all__ = ["ERROR_CODES", "EXAMPLE_JOB", "EXAMPLE_RUN", "EXAMPLE_SPEC", "openapi_document"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _with_roles(paths: dict[str, Schema]) -> dict[str, Schema]:
    """Every authenticated operation gets its role from REQUIRED_ROLES (KeyError if an
    operation has none: a new route needs a decision), and a 403 if read is not enough."""
    for template, item in paths.items():
        for method in _METHODS:
            op = item.get(method)
            if op is None or op.get("security") == []:
                continue
            role = REQUIRED_ROLES[(method.upper(), template)]
            op["x-required-role"] = role.value
            op["description"] = (f"Requires a token with role `{role.value}` or above "
                                 f"(roles: read < operate < admin).")
            if role is not Role.READ:
                seed = template.startswith(("/job/", "/worker/"))
                op["responses"]["403"] = error_ref(("Seed" if seed else "") + "Forbidden")
    return paths


@functools.lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Scheduler master API", "version": "1",
                 "description": "A distributed crontab's master: jobs in etcd, run "
                                "history in MySQL or SQLite. Times are epoch "
                                "milliseconds. Every operation also answers 421 "
                                "misdirected_request to a Host the master does not "
                                "serve, and 403 cross_origin to a state-changing "
                                "request a browser sent from another origin. See "
                                "docs/api.md."},
        "security": [{"bearer": []}],
        "paths": _with_roles(all_paths()),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": component_schemas(),
            "responses": component_responses(),
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy (callers may not mutate the cached one)."""
    return copy.deepcopy(_document())
