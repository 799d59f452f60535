"""The Scheduler master: ``python -m master`` (HTTP API, seed endpoints, web UI).

Public names are loaded on first use, so that importing ``master.cli`` (the schedctl
client, which only speaks HTTP) does not pull in Quart, hypercorn and etcd.

    run_master(config, *, clock=wall_ms, task_status)   run until SIGINT/SIGTERM
    build_tree(ctx, inboxes, etcd, services, *, serve_http=True)
                                                        the supervisor of one master
    create_app(ctx, services)                           the Quart-trio app
    MasterContext.create(config)                        what every part is given
    open_mailboxes(config)                              the actors' addresses and inboxes
    Services.create(ctx, etcd, addresses.workers)       what the HTTP handlers ask
    openapi_document()                                  the OpenAPI 3.1 description
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import build_tree, run_master
    from .context import MasterContext, open_mailboxes
    from .openapi import openapi_document
    from .services import Services
    from .web import create_app

__all__ = ["MasterContext", "Services", "build_tree", "create_app", "open_mailboxes",
           "openapi_document", "run_master"]

_WHERE = {
    "run_master": ".app", "build_tree": ".app", "create_app": ".web",
    "MasterContext": ".context", "open_mailboxes": ".context", "openapi_document": ".openapi",
    "Services": ".services",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'master' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
