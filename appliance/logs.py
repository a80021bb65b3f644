"""Logging setup: the standard library, one logger per module, key=value context.

Messages put their context in the text as ``key=value`` pairs (``meeting_id=...``,
``pid=...``), so one line can be grepped and parsed without a structured backend.
"""

from __future__ import annotations

import logging
import os
import sys

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def parse_level(value: str | None) -> int:
    """``LOG_LEVEL`` as a logging level; unknown names fall back to info."""
    return LEVELS.get((value or "info").strip().lower(), logging.INFO)


def configure(level: int | None = None, stream=None) -> None:
    """Send every logger's records to ``stream`` (stderr) at ``LOG_LEVEL``."""
    if level is None:
        level = parse_level(os.environ.get("LOG_LEVEL"))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Hypercorn's access log would add a line per request; keep it behind debug.
    logging.getLogger("hypercorn.access").setLevel(max(level, logging.WARNING))
