"""``AlertService``: the deliverer as a supervisor child, with a store of its own.

Both the worker and the master run one. It opens its own connection to the run store
(retried with backoff while the store is down) and its own HTTP client, so a send
that hangs, a slow store or a full pool here never touches the LogSink or the
scheduling path (issue 12: "sending never delays scheduling").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import trio

from cluster.backoff import Backoff
from cluster.store import StoreError, StoreSettings, open_store

from ._deliverer import Deliverer, DeliveryStatistics
from ._senders import Senders
from ._source import AlertSource

__all__ = ["AlertService"]

log = logging.getLogger(__name__)


class AlertService:
    """A child (``run``/``request_stop``); ``deliverer_options`` go to ``Deliverer``."""

    def __init__(self, source: AlertSource, db: Any, owner: str, *,
                 settings: StoreSettings | None = None,
                 opener: Callable[..., Any] = open_store, **deliverer_options: Any) -> None:
        self._source = source
        self._db = db
        self._owner = owner
        self._settings = settings or StoreSettings()
        self._opener = opener
        self._options = deliverer_options
        self._scope: trio.CancelScope | None = None
        self._stopping = False
        self.deliverer: Deliverer | None = None

    def statistics(self) -> DeliveryStatistics:
        return self.deliverer.statistics() if self.deliverer else DeliveryStatistics()

    def wake(self) -> None:
        if self.deliverer is not None:
            self.deliverer.wake()

    def request_stop(self) -> None:
        self._stopping = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._scope = trio.CancelScope()  # fresh per run: a supervisor may rerun it
        if self._stopping:
            self._scope.cancel()
        with self._scope:
            limits = httpx.Limits(max_connections=16, max_keepalive_connections=4)
            async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:
                self.deliverer = Deliverer(self._source, Senders(client), self._owner,
                                           **self._options)
                task_status.started()
                backoff = Backoff(1.0, 30.0)
                while True:
                    try:
                        async with self._opener(self._db, self._settings) as store:
                            backoff.succeeded()
                            await self.deliverer.run(store.alerts)
                    except (StoreError, OSError) as exc:
                        delay_s = backoff.failed()
                        log.debug("alert delivery: store not open (%s); retry in %.0f s",
                                  exc, delay_s)
                        await trio.sleep(delay_s)
