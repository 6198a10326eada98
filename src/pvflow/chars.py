"""Char waveforms as text (base layer, no I/O): EPICS stores long strings in CHAR arrays.

Shared by the ophyd and ophyd-async integrations, which both show such arrays as ``str``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def decode_chars(value: Any) -> str:
    """The text in a char array: bytes up to the first NUL, trailing blanks dropped."""
    codes = np.atleast_1d(np.asarray(value)).astype(np.uint8).tobytes()
    return codes.split(b"\0", 1)[0].decode("latin-1").rstrip()


def encode_chars(text: str, length: int | None = None) -> list[int]:
    """``text`` as char-array elements with a closing NUL (as the command-line caput writes),
    cut to fit ``length`` elements when given."""
    codes = list(text.encode("latin-1"))
    if length is not None:
        codes = codes[:max(length - 1, 0)]
    return codes + [0]
