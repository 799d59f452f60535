"""Pure translation logic: no server needed."""

from __future__ import annotations

import pytest
from etcd3 import etcdrpc

from cluster.etcd import Compare, Delete, Get, Put
from cluster.etcd._connection import parse_endpoint
from cluster.etcd._txn import txn_request
from cluster.etcd._types import prefix_range_end


def test_prefix_range_end_is_the_next_key_after_the_prefix():
    assert prefix_range_end(b"/cron/") == b"/cron0"
    assert prefix_range_end(b"a\xff") == b"b"
    assert prefix_range_end(b"\xff\xff") == b"\0"  # to the end of the keyspace


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:2379", ("127.0.0.1", 2379)),
    ("http://etcd-1:2379/", ("etcd-1", 2379)),
    ("[::1]:2379", ("[::1]", 2379)),
])
def test_parse_endpoint_accepts_host_port(text, expected):
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["localhost", "https://h:2379", ":2379", "h:port"])
def test_parse_endpoint_rejects_what_it_cannot_dial(text):
    with pytest.raises(ValueError, match="host:port"):
        parse_endpoint(text)


def test_compare_checks_operator_and_operand_type():
    with pytest.raises(ValueError, match="op must be one of"):
        Compare.create_revision("k", "=", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value compares against bytes"):
        Compare("k", Compare.value("k", "==", b"").target, "==", 3)
    with pytest.raises(TypeError, match="version compares against int"):
        Compare.version("k", ">", b"1")  # type: ignore[arg-type]


def test_compares_are_values():
    assert Compare.create_revision("k", "==", 0) == Compare.create_revision("k", "==", 0)
    assert hash(Put("k", b"v", 7)) == hash(Put("k", b"v", 7))


def test_txn_request_translates_every_compare_and_op():
    request = txn_request(
        [Compare.create_revision("a", "==", 0), Compare.mod_revision("b", "<", 5),
         Compare.version("c", ">", 1), Compare.value("d", "!=", "x")],
        [Put("a", "v", lease_id=9), Delete("b")],
        [Get("a")],
    )
    C = etcdrpc.Compare
    targets = [(c.key, c.target, c.result) for c in request.compare]
    assert targets == [(b"a", C.CREATE, C.EQUAL), (b"b", C.MOD, C.LESS),
                       (b"c", C.VERSION, C.GREATER), (b"d", C.VALUE, C.NOT_EQUAL)]
    assert request.compare[1].mod_revision == 5 and request.compare[3].value == b"x"
    put = request.success[0].request_put
    assert (put.key, put.value, put.lease) == (b"a", b"v", 9)
    assert request.success[1].request_delete_range.key == b"b"
    assert request.failure[0].request_range.key == b"a"
