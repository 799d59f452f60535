"""The master reads run history from a MariaDB that accepts only TLS (``--db-ca``).

The password is a setting of its own (``db_password``: the environment or a file in
production), not part of the URL; a refused certificate makes run queries answer 503
naming the refusal, and neither the answer nor the log holds the password.
"""

from __future__ import annotations

import dataclasses
import logging

from cluster.store import open_store

from master_testkit import make_config, record, running_master


def tls_config(tmp_path, etcd_endpoint, etcd_prefix, mysql_tls, database, ca):
    no_password = dataclasses.replace(mysql_tls.url(database), password=None)
    return make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=no_password.url,
                       db_password=mysql_tls.password, db_ca_file=str(ca))


async def test_runs_are_read_over_tls(tmp_path, etcd_endpoint, etcd_prefix, mysql_tls,
                                      mysql_tls_db):
    async with open_store(mysql_tls.tls_url(mysql_tls_db)) as store:
        await store.write_batch([record("r1", "job-a"), record("r2", "job-a", start=2_000)])
    config = tls_config(tmp_path, etcd_endpoint, etcd_prefix, mysql_tls, mysql_tls_db,
                        mysql_tls.ca)
    async with running_master(config) as master:
        answer = await master.get("/api/v1/jobs/job-a/runs")
        assert answer.status == 200, answer.body
        assert [r["runId"] for r in answer.json["runs"]] == ["r2", "r1"]


async def test_a_refused_certificate_is_a_503_without_the_password(
        tmp_path, etcd_endpoint, etcd_prefix, mysql_tls, mysql_tls_db, caplog):
    caplog.set_level(logging.DEBUG)
    config = tls_config(tmp_path, etcd_endpoint, etcd_prefix, mysql_tls, mysql_tls_db,
                        mysql_tls.other_ca)
    async with running_master(config) as master:
        answer = await master.get("/api/v1/runs")
        assert answer.status == 503, answer.body
        assert mysql_tls.password.encode() not in answer.body
    assert "the server's TLS certificate was refused" in caplog.text
    assert mysql_tls.password not in caplog.text
