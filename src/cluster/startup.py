"""What ``python -m master`` and ``python -m worker`` do alike before they start.

Both parse the same kind of command line (their own settings of ``cluster.config``),
report every start-up refusal as one line on stderr *before* logging is set up, and
then log the same things in the same order: flag-secret warnings, the redacted
settings, and a note when etcd did not answer yet. Only the processes' entry points
import this.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping

from .config import Config, add_config_flags, fields_for, secret_flag_warnings

__all__ = ["parse_process_args", "start_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def parse_process_args(role: str, description: str, argv: list[str] | None) -> argparse.Namespace:
    """``role``'s settings as flags (``master`` or ``worker``), with its --help text."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {role}", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(parser, fields_for(role))
    return parser.parse_args(argv)


def start_logging(role: str, config: Config, args: argparse.Namespace,
                  settings: Mapping[str, object], etcd_note: str | None) -> None:
    """Set up logging, then say what the process starts with (no secret: redacted)."""
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT)
    log = logging.getLogger(role)
    for warning in secret_flag_warnings(args):
        log.warning("%s", warning)
    log.info("settings: %s", dict(settings))
    if etcd_note is not None:
        log.warning("%s", etcd_note)
