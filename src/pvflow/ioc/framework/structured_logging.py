"""Structured ``key=value`` logs for IOCs (application layer; standard library only).

One line per event: ``2024-05-01T12:00:00.123 INFO pvflow.ioc.detector msg="State switch"
old=READY new=ACQUIRE``. Operators grep and journald indexes these lines, so every value that
matters is a field, not prose: the PV, the value, the state, the reason.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}

_FIELDS_ATTRIBUTE = "pvflow_fields"


def format_value(value: object) -> str:
    """Quote a value when it holds spaces, quotes, ``=`` or is empty, so lines stay parseable."""
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    if text == "" or any(c in text for c in ' "=\t\n'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class KeyValueFormatter(logging.Formatter):
    """Render a record as ``time level logger msg="..." key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        parts = [f"{stamp}.{int(record.msecs):03d}", record.levelname, record.name,
                 "msg=" + format_value(record.getMessage())]
        fields = getattr(record, _FIELDS_ATTRIBUTE, None) or {}
        parts.extend(f"{key}={format_value(value)}" for key, value in fields.items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def log_event(logger: logging.Logger, level: int, message: str, **fields: object) -> None:
    """Log ``message`` with ``fields`` rendered as ``key=value`` by :class:`KeyValueFormatter`."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={_FIELDS_ATTRIBUTE: fields})


def parse_level(name: str) -> int:
    """A level name (any case) to its number; ValueError names the accepted names."""
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}; use one of "
                         + ", ".join(sorted(set(LEVELS) - {"warn"}))) from None


def configure_logging(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send all ``pvflow`` logs to ``stream`` (stderr) as key=value lines, flushed per line."""
    if isinstance(level, str):
        level = parse_level(level)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
