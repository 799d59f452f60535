"""``ask``: how an HTTP handler calls an actor, with a deadline, and what a failure means.

The handler owns the deadline (``trio.fail_after``). Whatever goes wrong becomes an
``ApiError`` with the right status: the actor's own ApiError passes through; an
unreachable etcd or store, or no answer in time, is a 503 naming which; a stopped
actor means the master is shutting down. Anything else is re-raised as it was, so
the app's 500 handler logs the real traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

from actors import Address, CallFailed, MailboxClosed, Reply, call
from cluster.etcd import EtcdUnavailable
from cluster.store import (InvalidCursor, InvalidQuery, StoreClosedError, StoreConfigError,
                           StoreSchemaError, StoreUnavailable)

from .context import MasterContext
from .errors import ApiError, BadRequest, EtcdDown, ShuttingDown, StoreDown, Unavailable
from .messages import JobManagerMsg, LogManagerMsg, WorkerManagerMsg

__all__ = ["as_api_error", "ask", "ask_jobs", "ask_runs", "ask_workers"]

M = TypeVar("M")
R = TypeVar("R")

# RunStore argument names -> the API's query parameter names.
_QUERY_FIELDS = {"since_ms": "since", "until_ms": "until"}


async def ask(address: Address[M], make_request: Callable[[Reply[R]], M], *,
              timeout_s: float, down: type[EtcdDown] | type[StoreDown]) -> R:
    """``call`` the actor within ``timeout_s``; ``down`` names the dependency behind it."""
    try:
        with trio.fail_after(timeout_s):
            return await call(address, make_request)
    except trio.TooSlowError:
        raise down(f"no answer within {timeout_s:g} s") from None
    except MailboxClosed:
        raise ShuttingDown() from None
    except CallFailed as exc:
        mapped = as_api_error(exc.cause)
        if mapped is None:
            raise exc.cause from None  # unexpected: the 500 handler logs its traceback
        raise mapped from exc.cause


async def ask_jobs(ctx: MasterContext, make_request: Callable[[Reply[R]], JobManagerMsg]) -> R:
    return await ask(ctx.peers.jobs, make_request, timeout_s=ctx.jobs_timeout_s, down=EtcdDown)


async def ask_runs(ctx: MasterContext, make_request: Callable[[Reply[R]], LogManagerMsg]) -> R:
    return await ask(ctx.peers.runs, make_request, timeout_s=ctx.runs_timeout_s, down=StoreDown)


async def ask_workers(ctx: MasterContext,
                      make_request: Callable[[Reply[R]], WorkerManagerMsg]) -> R:
    return await ask(ctx.peers.workers, make_request, timeout_s=ctx.workers_timeout_s,
                     down=EtcdDown)


def as_api_error(error: BaseException) -> ApiError | None:
    """The API error for an actor's failure; None for a bug (a 500)."""
    match error:
        case ApiError():
            return error
        case EtcdUnavailable():
            return EtcdDown(str(error))
        case StoreUnavailable() | StoreClosedError():
            return StoreDown(str(error))
        case StoreSchemaError() | StoreConfigError():
            return StoreDown(str(error))
        case InvalidCursor():
            return BadRequest("cursor", "not a cursor this API issued (pass nextCursor back)")
        case InvalidQuery():
            return BadRequest(_QUERY_FIELDS.get(error.argument, error.argument), str(error))
        case _:
            return None


def is_unavailable(error: BaseException) -> bool:
    return isinstance(as_api_error(error), Unavailable)
