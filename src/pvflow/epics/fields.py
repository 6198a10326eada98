"""pyepics-style metadata dictionaries from pvflow readings (integration layer, no I/O).

ophyd reads a PV's state as the keyword dictionary pyepics passes to its callbacks (``value``,
``status``, ``lower_ctrl_limit``, ``enum_strs``, ``char_value`` ...). These pure functions build
exactly those keys from a :class:`pvflow.Reading`, so the PV object never invents a format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..chars import decode_chars
from ..reading import Reading

# Every key pyepics keeps per PV (``epics.PV._fields``); ophyd code and user callbacks may
# look any of them up, so all are present (None until known).
FIELDS = (
    "pvname", "value", "char_value", "status", "ftype", "chid", "host", "count", "nelm",
    "access", "write_access", "read_access", "severity", "timestamp", "posixseconds",
    "nanoseconds", "precision", "units", "enum_strs", "monitor_delta", "upper_disp_limit",
    "lower_disp_limit", "upper_alarm_limit", "lower_alarm_limit", "lower_warning_limit",
    "upper_warning_limit", "upper_ctrl_limit", "lower_ctrl_limit", "type", "typefull",
)

CONTROL_KEYS = (
    "precision", "units", "enum_strs", "upper_disp_limit", "lower_disp_limit",
    "upper_alarm_limit", "lower_alarm_limit", "upper_warning_limit", "lower_warning_limit",
    "upper_ctrl_limit", "lower_ctrl_limit",
)

# pyepics shows char waveforms shorter than this as text in ``char_value`` (its
# AUTOMONITOR_MAXLENGTH); longer ones only when a string is asked for explicitly.
LONG_STRING_LENGTH = 65536

_LIMITS = (
    ("display_limits", "lower_disp_limit", "upper_disp_limit"),
    ("alarm_limits", "lower_alarm_limit", "upper_alarm_limit"),
    ("warning_limits", "lower_warning_limit", "upper_warning_limit"),
    ("control_limits", "lower_ctrl_limit", "upper_ctrl_limit"),
)


# pvAccess field types under the DBR names pyepics (and so ophyd's string handling) expects.
_PVA_AS_DBR = {"double": "DOUBLE", "float": "FLOAT", "int": "LONG", "uint": "LONG",
               "short": "SHORT", "ushort": "SHORT", "byte": "CHAR", "ubyte": "CHAR",
               "boolean": "CHAR", "long": "DOUBLE", "ulong": "DOUBLE", "string": "STRING"}


def dbr_native(type_name: str, element_count: int) -> tuple[str, int]:
    """(DBR type name, element count) of a channel as pyepics would report it. pvAccess
    names its types (``double[]``, an NTEnum id) and tells no array length before a read:
    an array counts as two elements, enough to be shown and monitored as an array."""
    if "NTEnum" in type_name or type_name == "enum_t":
        return "ENUM", 1
    base = type_name.removesuffix("[]")
    if base in _PVA_AS_DBR:
        is_array = type_name.endswith("[]")
        return _PVA_AS_DBR[base], max(element_count, 2) if is_array else 1
    return type_name, element_count


def time_fields(reading: Reading) -> dict[str, Any]:
    """The keys a DBR_TIME read or monitor carries: alarm state and timestamp."""
    fields: dict[str, Any] = {}
    put_time_fields(fields, reading)
    return fields


def put_time_fields(fields: dict[str, Any], reading: Reading) -> None:
    """``time_fields`` written straight into ``fields`` (every monitor update does this)."""
    fields["status"] = reading.status
    fields["severity"] = reading.severity
    timestamp = reading.timestamp
    if timestamp is not None:
        seconds = math.floor(timestamp)
        fields["timestamp"] = timestamp
        fields["posixseconds"] = seconds
        fields["nanoseconds"] = int(round((timestamp - seconds) * 1e9))


def control_fields(reading: Reading) -> dict[str, Any]:
    """The keys a DBR_CTRL read carries; absent ones (no precision on an int) stay absent so
    they never overwrite what is known."""
    fields: dict[str, Any] = {}
    if reading.precision is not None:
        fields["precision"] = reading.precision
    if reading.units is not None:
        fields["units"] = reading.units
    if reading.enum_strings:
        fields["enum_strs"] = tuple(reading.enum_strings)
    for attribute, low_key, high_key in _LIMITS:
        limits = getattr(reading, attribute)
        if limits is not None:
            fields[low_key], fields[high_key] = limits
    return fields


def read_metadata(reading: Reading, form: str) -> dict[str, Any]:
    """The keys a read of ``form`` brings, as pyepics' ``get_with_metadata`` has them: alarm
    state and timestamp for TIME, control fields and alarm state for CTRL, none for native."""
    if form == "time":
        return time_fields(reading)
    if form == "ctrl":
        fields = control_fields(reading)
        fields.update(status=reading.status, severity=reading.severity)
        return fields
    return {}


def char_value(value: Any, native_type: str | None, element_count: int, precision: int | None,
               enum_strings: Sequence[str] | None, long_string: bool = False) -> Any:
    """The text pyepics shows for ``value`` (its ``_set_charval``): enum labels, char
    waveforms decoded up to the first NUL, floats at the PV's precision."""
    if value is None:
        return "None"
    if native_type == "STRING" or isinstance(value, str):
        return value
    if native_type == "CHAR" and (element_count < LONG_STRING_LENGTH or long_string):
        return decode_chars(value)
    if element_count > 1:
        length = len(value) if hasattr(value, "__len__") else 1
        return f"<array size={length}, type=time_{(native_type or 'unknown').lower()}>"
    if native_type in ("FLOAT", "DOUBLE") and precision is not None:
        try:
            style = "g" if 4 < abs(int(math.log10(abs(value + 1e-9)))) else "f"
            return f"{value:.{precision}{style}}"
        except (ValueError, TypeError, ArithmeticError):
            return str(value)
    if native_type == "ENUM" and enum_strings:
        try:
            return enum_strings[int(value)]
        except (IndexError, TypeError, ValueError):
            return str(value)
    return repr(value)


def is_array(value: Any) -> bool:
    """Whether a read returned an array (numpy array or a list of strings)."""
    return isinstance(value, (np.ndarray, list, tuple))
