"""Regression tests of the audit's findings on the master's HTTP side (issue #10), against
a real ``python -m master`` process with no token (the default on loopback):

- 20,000 requests with invented 8 KB methods grew RSS from 68 to 230 MB and /metrics
  to 160 MB (the method was a label);
- a very long /static/ path answered 500 with a 30 KB traceback in the log;
- a forged ``?cursor=`` answered 500 (a number the database's integer cannot hold).

/healthz with the store down is in test_master_outages.py; the browser's side is in
test_master_browser_guard.py and tests/e2e/test_e2e_browser.py.
"""

from __future__ import annotations

import base64
import os
import random
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import services  # scripts/: on sys.path through tests/conftest.py

from master_testkit import make_config, make_webapp, running_master

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


@dataclass
class MasterProcess:
    process: subprocess.Popen
    url: str
    port: int
    log_path: Path

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def master_process(tmp_path, etcd_endpoint, etcd_prefix) -> Iterator[MasterProcess]:
    port = services.free_port()
    log_path = tmp_path / "master.log"
    args = [sys.executable, "-m", "master", "--etcd", etcd_endpoint, "--prefix", etcd_prefix,
            "--db", f"sqlite:///{tmp_path}/runs.db", "--port", str(port),
            "--webapp", str(make_webapp(tmp_path / "webapp"))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   cwd=ROOT, env=env)
    master = MasterProcess(process, f"http://127.0.0.1:{port}", port, log_path)
    try:
        wait_healthy(master)
        yield master
    finally:
        process.terminate()
        process.wait(30)


def wait_healthy(master: MasterProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert master.process.poll() is None, master.log()
        try:
            if httpx.get(master.url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the master did not become healthy\n{master.log()}")


def raw_request(port: int, method: bytes, target: bytes) -> tuple[int, bytes]:
    """One request on its own connection, whatever its method and target; (status, body).

    Reads the answer by its Content-Length and closes: hypercorn leaves closing to the
    client (or to its read timeout), even after ``Connection: close``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += _received(sock)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
        while len(body) < int(fields.get(b"content-length", b"0")):
            body += _received(sock)
    return int(lines[0].split(b" ", 2)[1]), body


def _received(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    assert chunk, "the master closed the connection before its answer was complete"
    return chunk


def invented_method(rng: random.Random, size: int = 8192) -> bytes:
    return "".join(rng.choices(string.ascii_uppercase, k=size)).encode()


def test_invented_methods_leave_metrics_and_memory_flat(master_process):
    rng = random.Random(10)
    port = master_process.port
    for _ in range(300):  # warm up: the code paths, the allocator's arenas
        assert raw_request(port, invented_method(rng), b"/api/v1/jobs")[0] == 405
    before_kib = master_process.rss_kib()
    flood = 3000
    for i in range(flood):
        status, body = raw_request(port, invented_method(rng), b"/api/v1/jobs")
        assert status == 405 and len(body) < 1024, (i, status, len(body))
    for i in range(300):  # and invented paths: the route label is the rule, not the path
        path = b"/" + invented_method(rng, 2000).lower()
        assert raw_request(port, invented_method(rng, 64), path)[0] == 404
    growth_mib = (master_process.rss_kib() - before_kib) / 1024
    # Unbounded, each 8 KB method stays in memory as a label: 3,000 are 24+ MB.
    assert growth_mib < 8, f"RSS grew by {growth_mib:.1f} MiB"
    metrics = httpx.get(master_process.url + "/metrics", timeout=10).text
    assert len(metrics) < 64 * 1024, len(metrics)
    assert f'method="other",route="<unmatched>",status="405"}} {flood + 300}' in metrics
    assert 'method="other",route="<unmatched>",status="404"} 300' in metrics
    series = [line for line in metrics.splitlines()
              if line.startswith("scheduler_master_http_requests_total{")]
    others = [line for line in series if 'method="other"' in line]
    assert len(others) == 2 and all('route="/healthz"' in line  # start-up's polls
                                    for line in series if line not in others), series
    assert "Traceback" not in master_process.log()


@pytest.mark.parametrize("target", [
    b"/static/" + b"a" * 100_000,  # beyond the server's request-line limit
    b"/static/" + b"a" * 5_000,  # a file name the OS refuses (ENAMETOOLONG)
    b"/static/" + b"a/" * 3_000 + b"x",  # a path longer than PATH_MAX
    b"/" + b"a" * 5_000 + b".js",
    b"/static/%00", b"/static/a%00b.js", b"/static/%ff%fe", b"/static/\xff\xfe",
    b"/static/a\x01b", b"/static/..%2f..%2fetc%2fpasswd", b"/static/%zz", b"/%",
    b"/api/v1/jobs/\xc3\x28", b"/api/v1/jobs/" + b"j" * 5_000, b"/api/v1/runs/%00",
    b"/job/log?name=%ff&offset=%00", b"*", b"/api/v1/jobs?x=\xff",
], ids=lambda t: repr(t[:24]) + f"..{len(t)}")
def test_a_long_or_malformed_path_is_a_4xx_without_a_traceback(master_process, target):
    status, body = raw_request(master_process.port, b"GET", target)
    assert 400 <= status < 500, (status, body[:300])
    assert len(body) < 2048  # the path is clipped in the answer
    log = master_process.log()
    assert "Traceback" not in log and len(log) < 4096, log[-2000:]


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


FORGED_CURSORS = [
    cursor("k1:99999999999999999999999:1"),  # overflows the database's BIGINT
    cursor("k1:1:9223372036854775808"),
    cursor("k1:-9223372036854775809:1"),
    cursor("k1:+5:1"), cursor("k1: 5:1"), cursor("k1:5_0:1"), cursor("k1:١:1"),
    cursor("k1:1:2:3"), cursor("k1:1"), cursor("k2:1:1"), cursor("k1:1:x"),
    "%ff%fe", "====", "a" * 8000, "k1:1:1", "",
]


def test_a_forged_cursor_is_a_400(master_process):
    with httpx.Client(base_url=master_process.url, timeout=10) as client:
        for forged in FORGED_CURSORS:
            for path in ("/api/v1/runs", "/api/v1/jobs/j/runs"):
                answer = client.get(f"{path}?cursor={forged}")
                assert answer.status_code == 400, (forged, answer.text)
                assert answer.json()["error"]["field"] == "cursor"
        real = cursor("k1:1700000000000:42")  # well-formed: a page, even if empty
        assert client.get(f"/api/v1/runs?cursor={real}").json()["runs"] == []
    assert "Traceback" not in master_process.log()


async def test_a_forged_cursor_is_a_400_on_mysql_too(tmp_path, etcd_endpoint, etcd_prefix,
                                                      mysql_url):
    config = make_config(tmp_path, etcd_endpoint, etcd_prefix, db_url=mysql_url)
    async with running_master(config) as master:
        for forged in FORGED_CURSORS[:3]:
            answer = await master.get(f"/api/v1/runs?cursor={forged}")
            assert answer.status == 400 and answer.error["field"] == "cursor", answer.body
        real = cursor("k1:9223372036854775807:9223372036854775807")  # the largest: fits
        assert (await master.get(f"/api/v1/runs?cursor={real}")).json["runs"] == []
