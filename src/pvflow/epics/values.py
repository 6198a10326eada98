"""pyepics' conversions of values before a write (integration layer, pure functions).

pyepics (through libca's C types) accepts text for a number (``"0x10"``, ``"2.5"``), text for a
char waveform and any items for a string array; pvflow's codec takes exactly typed values and
raises ``ValueError`` otherwise. These functions bridge the two, for ``PV.put`` and ``ca.put``
alike.
"""

from __future__ import annotations

from typing import Any

from ..chars import encode_chars
from . import dbr
from .fields import is_array

_WHOLE_NUMBERS = (dbr.SHORT, dbr.LONG, dbr.CHAR)


def wire_value(value: Any, native_type: str, element_count: int) -> Any:
    """``value`` as pvflow writes it to a channel of ``native_type`` and ``element_count``."""
    code = dbr.CODES.get(native_type)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        if code == dbr.CHAR and element_count > 1:
            return encode_chars(value, element_count)  # its bytes and a NUL, as pyepics
        if element_count == 1 and code in _WHOLE_NUMBERS and value.strip():
            return int(value, 0)
        if element_count == 1 and code in (dbr.FLOAT, dbr.DOUBLE) and value.strip():
            return float(value)
        return value
    if code == dbr.STRING and element_count > 1 and is_array(value):
        return [str(item) for item in value] or [""]
    return value
