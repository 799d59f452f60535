"""The etcd adapter against an etcd with TLS, client certificates and auth on: every
kind of call works within the user's prefix, tokens are renewed when etcd forgets
them, and each wrong setting is named by the start-up check."""

from __future__ import annotations

import pytest
import trio

from cluster.etcd import (
    Compare,
    EtcdAuthFailed,
    EtcdCredentialsUnreadable,
    EtcdPermissionDenied,
    EtcdTlsFailed,
    EtcdUnavailable,
    Put,
    open_etcd,
)
from secure_etcd_kit import TOKEN_TTL_S, USER


async def test_keys_leases_transactions_and_watches_work_inside_the_prefix(
        secure_etcd, secure_prefix):
    async with open_etcd([secure_etcd.endpoint], access=secure_etcd.access()) as etcd:
        await etcd.check_access(secure_prefix)
        lease = await etcd.grant_lease(10)
        revision = await etcd.put(secure_prefix + "a", "1", lease_id=lease.id)
        claim = await etcd.txn([Compare.create_revision(secure_prefix + "lock", "==", 0)],
                               [Put(secure_prefix + "lock", "me", lease_id=lease.id)])
        assert claim.succeeded
        assert await etcd.keepalive_once(lease.id) > 0
        async with etcd.watch_prefix(secure_prefix, start_revision=revision) as events:
            assert (await anext(events)).key == secure_prefix + "a"
            assert (await anext(events)).key == secure_prefix + "lock"
        assert await etcd.revoke_lease(lease.id)
        assert (await etcd.get_prefix(secure_prefix)).kvs == ()
        assert etcd.statistics().authentications >= 1


async def test_keys_outside_the_prefix_are_denied_by_name(secure_etcd):
    async with open_etcd([secure_etcd.endpoint], access=secure_etcd.access()) as etcd:
        with pytest.raises(EtcdPermissionDenied, match=f"user '{USER}'"):
            await etcd.put("/elsewhere/k", "v")
        with pytest.raises(EtcdPermissionDenied):
            await etcd.check_access("/cron/")
        async with etcd.watch_prefix("/elsewhere/", start_revision=1) as events:
            with pytest.raises(EtcdPermissionDenied, match="watch"):
                await anext(events)


async def test_an_expired_token_is_renewed_and_the_call_goes_through(
        secure_etcd, secure_prefix):
    async with open_etcd([secure_etcd.endpoint], access=secure_etcd.access()) as etcd:
        await etcd.put(secure_prefix + "k", "1")
        first = etcd.statistics().authentications
        await trio.sleep(TOKEN_TTL_S + 1.5)  # idle: etcd forgets the token
        revision = await etcd.put(secure_prefix + "k", "2")  # a write, re-sent once
        assert etcd.statistics().authentications == first + 1
        await trio.sleep(TOKEN_TTL_S + 1.5)
        async with etcd.watch_prefix(secure_prefix, start_revision=revision) as events:
            assert (await anext(events)).value == b"2"  # created with a new token
            await trio.sleep(TOKEN_TTL_S + 1.5)  # a live watch outlives its token
            await etcd.put(secure_prefix + "k", "3")
            assert (await anext(events)).value == b"3"
        assert etcd.statistics().authentications >= first + 2


async def test_a_token_etcd_revoked_is_renewed_and_a_changed_password_is_named(
        secure_etcd, secure_prefix):
    def set_password(password: str) -> None:  # etcd drops the user's tokens
        secure_etcd.server.etcdctl("user", "passwd", USER, "--interactive=false",
                                   stdin=password + "\n")

    async with open_etcd([secure_etcd.endpoint], access=secure_etcd.access()) as etcd:
        await etcd.put(secure_prefix + "k", "1")
        first = etcd.statistics().authentications
        await trio.to_thread.run_sync(set_password, secure_etcd.password)  # the same one
        assert (await etcd.get(secure_prefix + "k")).value == b"1"
        assert etcd.statistics().authentications == first + 1
        await trio.to_thread.run_sync(set_password, "changed")
        try:
            with pytest.raises(EtcdAuthFailed, match="wrong user or password"):
                await etcd.get(secure_prefix + "k")
        finally:
            await trio.to_thread.run_sync(set_password, secure_etcd.password)


async def check(secure_etcd, prefix: str, **changes) -> None:
    async with open_etcd([secure_etcd.endpoint], timeout_s=3.0,
                         access=secure_etcd.access(**changes)) as etcd:
        await etcd.check_access(prefix)


async def test_the_start_up_check_names_each_wrong_setting(secure_etcd, secure_prefix,
                                                          tmp_path):
    await check(secure_etcd, secure_prefix)  # all right
    with pytest.raises(EtcdAuthFailed, match="wrong user or password"):
        await check(secure_etcd, secure_prefix, password="wrong")
    with pytest.raises(EtcdTlsFailed, match="does not verify against"):
        await check(secure_etcd, secure_prefix, ca_file=str(secure_etcd.other_ca))
    with pytest.raises(EtcdTlsFailed, match="requires a client certificate"):
        await check(secure_etcd, secure_prefix, cert_file=None, key_file=None)
    with pytest.raises(EtcdTlsFailed, match="expired on"):
        await check(secure_etcd, secure_prefix, cert_file=str(secure_etcd.expired.cert),
                    key_file=str(secure_etcd.expired.key))
    with pytest.raises(EtcdTlsFailed, match="signed by a CA etcd trusts"):
        await check(secure_etcd, secure_prefix, cert_file=str(secure_etcd.foreign.cert),
                    key_file=str(secure_etcd.foreign.key))
    with pytest.raises(EtcdTlsFailed, match="speaks TLS: set --etcd-ca"):
        await check(secure_etcd, secure_prefix, ca_file=None, cert_file=None, key_file=None)
    with pytest.raises(EtcdCredentialsUnreadable, match="No such file"):
        await check(secure_etcd, secure_prefix, cert_file=str(tmp_path / "none.crt"))
    with pytest.raises(EtcdPermissionDenied, match="no --etcd-user"):
        await check(secure_etcd, secure_prefix, user=None, password=None)


async def test_tls_towards_a_plain_etcd_is_named_and_a_dead_one_is_only_unavailable(
        secure_etcd, etcd_endpoint):
    access = secure_etcd.access(user=None, password=None)
    async with open_etcd([etcd_endpoint], timeout_s=15.0, access=access) as etcd:
        with pytest.raises(EtcdTlsFailed, match="speaks plain TCP"):
            await etcd.check_access("/cron/")
    async with open_etcd(["127.0.0.1:1"], timeout_s=1.0, access=secure_etcd.access()) as etcd:
        with pytest.raises(EtcdUnavailable) as raised:
            await etcd.check_access("/cron/")
        assert not isinstance(raised.value, EtcdTlsFailed)


async def test_after_etcd_restarts_calls_and_a_watch_go_on_with_a_new_token(
        secure_etcd, secure_prefix):
    async with open_etcd([secure_etcd.endpoint], access=secure_etcd.access()) as etcd:
        revision = await etcd.put(secure_prefix + "k", "1")
        first = etcd.statistics().authentications
        async with etcd.watch_prefix(secure_prefix, start_revision=revision) as events:
            assert (await anext(events)).value == b"1"
            # A restarted member has forgotten every simple token it issued.
            await trio.to_thread.run_sync(secure_etcd.server.stop)
            await trio.to_thread.run_sync(secure_etcd.server.start)
            with trio.fail_after(20):
                while True:
                    try:
                        await etcd.put(secure_prefix + "k", "2")
                        break
                    except EtcdUnavailable:
                        await trio.sleep(0.2)
                assert (await anext(events)).value == b"2"  # resumed by a new stream
        assert etcd.statistics().authentications > first
