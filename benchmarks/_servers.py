"""Throw-away etcd and MariaDB for one benchmark run, from ``scripts/services.py``.

``from_scripts`` loads the partition tests' proxy and lease watch from the same directory.

Why private servers rather than the shared test ones: a benchmark loads etcd with
hundreds of writes a second and must neither disturb tests running beside it nor be
disturbed by them; and the fault benchmarks stop servers on purpose.

``scripts/`` is not a package (it must run before the venv exists), so the module is
imported by path, once.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SERVICES_PATH = ROOT / "scripts" / "services.py"


def services() -> ModuleType:
    """``scripts/services.py`` as a module (EtcdServer, MariaDBServer, free_port)."""
    module = sys.modules.get("services")
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location("services", SERVICES_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["services"] = module
    spec.loader.exec_module(module)
    return module


def from_scripts(name: str) -> ModuleType:
    """A trio module of ``scripts/`` shared with the fault tests (``etcd_proxy``,
    ``lease_watch``): one copy, imported by name once ``services()`` put the directory
    on ``sys.path``."""
    services()
    return importlib.import_module(name)


@contextmanager
def scratch_dir(label: str, *, keep: bool = False) -> Iterator[Path]:
    """A temporary directory on the machine's disk (etcd's fsyncs are part of the cost)."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def etcd_server(base: Path) -> Iterator[object]:
    """A private single-member etcd (auto-compaction on, as in production)."""
    server = services().EtcdServer(base / "etcd-server").start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def mariadb_server(base: Path) -> Iterator[object]:
    """A private MariaDB with the ``scheduler`` database and a TCP user."""
    server = services().MariaDBServer(base / "mariadb-server").start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def store_url(kind: str, base: Path) -> Iterator[str]:
    """The run store the workers write to: ``sqlite`` (a file) or ``mysql`` (MariaDB)."""
    if kind == "sqlite":
        yield f"sqlite:///{base / 'runs.db'}"
        return
    if kind != "mysql":
        raise ValueError(f"store must be sqlite or mysql, not {kind!r}")
    with mariadb_server(base) as server:
        yield server.url()
