"""pyepics' ``epics.utils`` text helpers (integration layer, pure functions)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

IOENCODING = os.environ.get("PYEPICS_ENCODING", os.environ.get("PYTHONIOENCODING", "utf-8"))


def str2bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else bytes(text, IOENCODING)


def bytes2str(data: Any) -> str:
    if isinstance(data, bytes):
        return str(data, IOENCODING)
    return data if isinstance(data, str) else str(data)


def strjoin(sep: str | bytes, seq: Sequence[Any]) -> str:
    """Join text (or bytes up to the first NUL) with ``sep``."""
    if isinstance(sep, bytes):
        sep = bytes2str(sep)
    items = list(seq)
    if items and isinstance(items[0], bytes):
        kept = []
        for item in items:
            if item == b"\x00":
                break
            kept.append(bytes2str(item))
        items = kept
    return sep.join(items)
