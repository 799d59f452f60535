"""The start-up TLS probe (``cluster.etcd._probe``) against small fake servers: a plain
server that resets a ClientHello instead of closing it is still named plain TCP (in a
fresh-clone CI the probe saw the reset and said nothing; etcd closes or resets as
timing has it), and a server that resets everything gives no verdict at all."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cluster.etcd import EtcdAccess
from cluster.etcd._probe import diagnose_tls
from tls_certs import Authority


@contextmanager
def resetting_server(*, answers_http: bool) -> Iterator[str]:
    """Resets every connection that does not start with a plain HTTP request; answers
    one that does (if ``answers_http``) like etcd's /version."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                first = conn.recv(16)
                if answers_http and first.startswith(b"GET "):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                else:  # SO_LINGER 0: the close is a reset, not a FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_a_plain_server_that_resets_the_hello_is_named_plain_tcp(tmp_path):
    access = EtcdAccess(ca_file=str(Authority.create(tmp_path, "probe-ca").cert))
    with resetting_server(answers_http=True) as endpoint:
        failed = diagnose_tls([endpoint], access, timeout_s=5.0)
    assert failed is not None and "speaks plain TCP" in str(failed), failed


def test_a_server_that_resets_everything_gives_no_verdict(tmp_path):
    access = EtcdAccess(ca_file=str(Authority.create(tmp_path, "probe-ca").cert))
    with resetting_server(answers_http=False) as endpoint:
        assert diagnose_tls([endpoint], access, timeout_s=5.0) is None
