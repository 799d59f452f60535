"""Every key of the seed's config files is *used*, not only accepted (issue 12, item 9).

`etcdDialTimeout` was read, checked and then never passed to the etcd client. Two
guards: a static audit (each seed key's setting is read by the code of every process
that accepts it), and the value of each seed key followed to where it takes effect.
The dial timeout's effect itself is tested against etcd (tests/etcd/test_etcd_dial_timeout.py).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from cluster.config import load_config
from cluster.config._table import SETTINGS

SRC = Path(__file__).resolve().parents[2] / "src"
# Settings read through a derived property of Config rather than by their own name.
DERIVED = {"webapp_dir": "webapp_path", "db_url": "db"}
PACKAGES = {"master": ("master", "cluster"), "worker": ("worker", "cluster")}


def attributes_read(package: str) -> set[str]:
    """Every ``x.<name>`` in the package, its config module aside (which only parses)."""
    names: set[str] = set()
    for path in (SRC / package).rglob("*.py"):
        if "config" in path.relative_to(SRC).parts[1:2]:
            continue
        names |= {node.attr for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.Attribute)}
    return names


SEEDED = [s for s in SETTINGS if s.seed_keys]


def test_the_seed_keys_are_the_ones_its_files_use() -> None:
    keys = {k.lower() for s in SEEDED for k in s.seed_keys}
    files = [json.loads("\n".join(line.split("//")[0] for line in path.read_text().splitlines()))
             for path in (Path(__file__).parent / "seed").glob("*.json")]
    db_parts = {"dburi", "dbname", "dbusername", "dbpassword"}  # together: db_url
    assert {k.lower() for f in files for k in f} - db_parts == keys


@pytest.mark.parametrize("setting", SEEDED, ids=lambda s: s.seed_keys[0])
def test_each_seed_setting_is_read_by_every_process_that_accepts_it(setting) -> None:
    name = DERIVED.get(setting.name, setting.name)
    for process in sorted(setting.used_by):
        readers = set().union(*(attributes_read(p) for p in PACKAGES[process]))
        assert name in readers, f"{setting.name} ({setting.seed_keys[0]}) is accepted by " \
                                f"the {process} but never read"


def seed_config(tmp_path: Path, **keys: object):
    (tmp_path / "seed.json").write_text(json.dumps(keys))
    return load_config(path=tmp_path / "seed.json", env={})


def test_the_api_timeouts_reach_the_http_server(tmp_path) -> None:
    from master.web import _bare_app

    config = seed_config(tmp_path, apiReadTimeout=1500, apiWriteTimeout=2500)
    app = _bare_app(config)
    assert (app.config["BODY_TIMEOUT"], app.config["RESPONSE_TIMEOUT"]) == (1.5, 2.5)


def test_the_log_channel_length_is_the_log_sinks_mailbox(tmp_path) -> None:
    from worker.mailboxes import open_mailboxes

    config = seed_config(tmp_path, logChanLen=77)
    _, inboxes = open_mailboxes(config)
    assert inboxes.log_sink.statistics().capacity == 77
