"""``ask``: how an HTTP handler calls a service or an actor, with a deadline, and what a
failure means.

The handler owns the deadline (``trio.fail_after``). Whatever goes wrong becomes an
``ApiError`` with the right status: the service's own ApiError passes through; an
unreachable etcd or store, or no answer in time, is a 503 naming which; a stopped
actor means the master is shutting down. Anything else is re-raised as it was, so
the app's 500 handler logs the real traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, TypeVarTuple

import trio

from actors import Address, CallFailed, MailboxClosed, call
from cluster.etcd import EtcdNoQuorum, EtcdUnavailable
from cluster.store import (InvalidCursor, InvalidQuery, StoreClosedError, StoreConfigError,
                           StoreSchemaError, StoreUnavailable)

from .context import MasterContext
from .errors import ApiError, BadRequest, EtcdDown, NoQuorum, ShuttingDown, StoreDown, Unavailable
from .messages import ListWorkers, WorkerManagerMsg
from .views import WorkerView

__all__ = ["as_api_error", "ask", "ask_jobs", "ask_runs", "ask_workers", "both"]

R = TypeVar("R")
S = TypeVar("S")
Ts = TypeVarTuple("Ts")

# RunStore argument names -> the API's query parameter names.
_QUERY_FIELDS = {"since_ms": "since", "until_ms": "until"}


async def ask(fn: Callable[[*Ts], Awaitable[R]], *args: *Ts, timeout_s: float,
              down: type[EtcdDown] | type[StoreDown]) -> R:
    """``await fn(*args)`` within ``timeout_s``; ``down`` names the dependency behind it."""
    try:
        with trio.fail_after(timeout_s):
            return await fn(*args)
    except trio.TooSlowError:
        raise down(f"no answer within {timeout_s:g} s") from None
    except MailboxClosed:
        raise ShuttingDown() from None
    except CallFailed as exc:  # an actor failed the reply
        mapped = as_api_error(exc.cause)
        if mapped is None:
            raise exc.cause from None  # unexpected: the 500 handler logs its traceback
        raise mapped from exc.cause
    except Exception as exc:
        mapped = as_api_error(exc)
        if mapped is None or mapped is exc:
            raise  # an ApiError as it is; anything unexpected for the 500 handler
        raise mapped from exc


async def ask_jobs(ctx: MasterContext, fn: Callable[[*Ts], Awaitable[R]], *args: *Ts) -> R:
    """A JobManager request (``fn`` one of its methods) under the etcd deadline."""
    return await ask(fn, *args, timeout_s=ctx.jobs_timeout_s, down=EtcdDown)


async def ask_runs(ctx: MasterContext, fn: Callable[[*Ts], Awaitable[R]], *args: *Ts) -> R:
    """A LogManager query (``fn`` one of its methods) under the store deadline."""
    return await ask(fn, *args, timeout_s=ctx.runs_timeout_s, down=StoreDown)


async def ask_workers(ctx: MasterContext,
                      workers: Address[WorkerManagerMsg]) -> list[WorkerView]:
    """The live workers, from the WorkerManager actor."""
    return await ask(call, workers, ListWorkers, timeout_s=ctx.workers_timeout_s,
                     down=EtcdDown)


async def both(first: Callable[[], Awaitable[R]], second: Callable[[], Awaitable[S]]
               ) -> tuple[R, S]:
    """``first()`` and ``second()`` at once (an etcd read and a store query take their
    times side by side, not one after the other). The first to fail cancels the other
    and its error is raised as it is (an ApiError stays one: not an exception group)."""
    results: list[object] = [None, None]
    failure: Exception | None = None

    async def run(i: int, call: Callable[[], Awaitable[object]]) -> None:
        nonlocal failure
        try:
            results[i] = await call()
        except Exception as exc:  # raised below, after the nursery
            if failure is None:
                failure = exc
            nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, 0, first)
        nursery.start_soon(run, 1, second)
    if failure is not None:
        raise failure
    return results[0], results[1]  # type: ignore[return-value]


def as_api_error(error: BaseException) -> ApiError | None:
    """The API error for a service's failure; None for a bug (a 500)."""
    match error:
        case ApiError():
            return error
        case EtcdNoQuorum():
            return NoQuorum()
        case EtcdUnavailable():
            return EtcdDown(str(error))
        case StoreUnavailable() | StoreClosedError():
            return StoreDown(str(error))
        case StoreSchemaError() | StoreConfigError():
            return StoreDown(str(error))
        case InvalidCursor(argument="after"):
            return BadRequest("after", "not a follow cursor this API issued (pass after back)")
        case InvalidCursor():
            return BadRequest("cursor", "not a cursor this API issued (pass nextCursor back)")
        case InvalidQuery():
            return BadRequest(_QUERY_FIELDS.get(error.argument, error.argument), str(error))
        case _:
            return None


def is_unavailable(error: BaseException) -> bool:
    return isinstance(as_api_error(error), Unavailable)
