"""The LogSink when MySQL's TLS settings cannot work: like an outage, said once.

A CA file that cannot be read makes every open fail at once (before any dial), for as
long as the file stays missing. The sink must keep the records (spilling them on a
flush), retry with backoff, and log the reason once, not once per retry; never the
password.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import trio

from cluster.store import StoreTlsError, open_store
from log_sink_testkit import records, running_sink, sink_config

PASSWORD = "S3cret-in-no-log"


async def test_an_unreadable_ca_file_is_logged_once_and_records_are_kept(
        tmp_path, caplog, autojump_clock):
    cfg = sink_config(tmp_path, db_url="mysql://sched@127.0.0.1:9/runs",
                      db_password=PASSWORD, db_ca_file=str(tmp_path / "missing-ca.pem"))
    failures: list[BaseException] = []

    @asynccontextmanager
    async def counting_opener(target, settings):
        try:
            async with open_store(target, settings) as store:
                yield store
        except Exception as exc:
            failures.append(exc)
            raise

    caplog.set_level(logging.DEBUG)
    async with running_sink(cfg, opener=counting_opener) as h:
        await h.write_all(records(5))
        await trio.sleep(60)
        await h.flush()  # store down: flushed to the spill file
        assert len(h.spill_lines()) == 5
    assert len(failures) > 5 and all(isinstance(f, StoreTlsError) for f in failures)
    said = [r for r in caplog.records
            if r.levelno >= logging.WARNING and "cannot read the CA file" in r.getMessage()]
    assert len(said) == 1
    assert "missing-ca.pem: No such file or directory" in said[0].getMessage()
    assert PASSWORD not in caplog.text


async def test_the_sink_hands_the_opener_the_parsed_url_with_its_password(
        tmp_path, autojump_clock):
    """The password reaches the driver inside the DbUrl object, never as a string URL
    that a log line or an error could print."""
    cfg = sink_config(tmp_path, db_url="mysql://sched@127.0.0.1:9/runs",
                      db_password=PASSWORD)
    seen = []

    @asynccontextmanager
    async def spying_opener(target, settings):
        seen.append(target)
        raise StoreTlsError("spy", "stop here")
        yield  # pragma: no cover

    async with running_sink(cfg, opener=spying_opener):
        await trio.sleep(1)
    assert seen and seen[0] == cfg.db and seen[0].password == PASSWORD
    assert PASSWORD not in str(seen[0].redacted())
