"""How `pvflow get|put|monitor` show a result: caget-style text or strict JSON (application layer).

A result is what the Context returned for one name: a bare value, a :class:`Reading`, or the
exception the name failed with. Enums show their choice unless numbers were asked for (caget's
``-n``); the CLI reads enums in the CTRL form for that, so a Reading may carry more fields than
the form the user chose, and only that form's fields are shown.
"""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

import numpy as np

from ..reading import Reading

EPICS_EPOCH = 631152000.0  # 1990-01-01 UTC, EPICS time zero, in POSIX seconds
TIME_FIELDS = ("value", "timestamp", "severity", "status")
LIMITS = (("Display limits", "display_limits"), ("Alarm limits", "alarm_limits"),
          ("Warning limits", "warning_limits"), ("Control limits", "control_limits"))


def choice(reading: Reading) -> Any:
    """The reading's value, an enum index replaced by its choice."""
    value, choices = reading.value, reading.enum_strings
    if choices and isinstance(value, (int, np.integer)) and 0 <= value < len(choices):
        return choices[value]
    return value


def shown_value(result: Any, numbers: bool) -> Any:
    if isinstance(result, Reading):
        return result.value if numbers else choice(result)
    return result


def format_value(value: Any) -> str:
    """A value as caget prints it: an array as its element count and elements."""
    if isinstance(value, (np.ndarray, list)):  # a list: an array of strings
        items = value.tolist() if isinstance(value, np.ndarray) else value
        return " ".join([str(len(items)), *(str(item) for item in items)])
    return str(value)


def _stamp(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    if timestamp == EPICS_EPOCH:  # a record never processed (UDF)
        return "<undefined> "
    return datetime.datetime.fromtimestamp(timestamp).isoformat(sep=" ") + " "


def text(name: str, result: Any, form: str, numbers: bool) -> str:
    """One line (``value``, ``time``) or a block (``ctrl``) as caget shows them."""
    value = format_value(shown_value(result, numbers))
    if form == "value" or not isinstance(result, Reading):
        return f"{name} {value}"
    alarm = f" {result.alarm}" if result.severity or result.status else ""
    if form == "time":
        return f"{name} {_stamp(result.timestamp)}{value}{alarm}"
    return "\n".join([name, *(f"    {label + ':' if label else '':16}{shown}"
                               for label, shown in _ctrl_lines(result, value))])


def _ctrl_lines(reading: Reading, value: str) -> list[tuple[str, str]]:
    lines = [("Value", value)]
    if reading.timestamp is not None:
        lines.append(("Timestamp", _stamp(reading.timestamp).strip()))
    lines += [("Status", reading.status_name), ("Severity", reading.severity_name)]
    if reading.units is not None:
        lines.append(("Units", reading.units))
    if reading.precision is not None:
        lines.append(("Precision", str(reading.precision)))
    lines += [(label, f"{limits[0]:g} .. {limits[1]:g}") for label, field in LIMITS
              if (limits := getattr(reading, field)) is not None]
    if reading.enum_strings:
        lines.append(("Enums", f"({len(reading.enum_strings)})"))
        lines += [("", f"[{index:2}] {option}") for index, option in
                  enumerate(reading.enum_strings)]
    return lines


def plain(value: Any) -> Any:
    """``value`` as strict JSON can hold it: lists for arrays, null for NaN and infinities."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def record(name: str, result: Any, form: str, numbers: bool) -> dict[str, Any]:
    """The JSON object of one name: the fields of its form."""
    if not isinstance(result, Reading):
        return {"name": name, "value": plain(result)}
    fields = TIME_FIELDS if form == "time" else ("value",) if form == "value" else \
        result.__dataclass_fields__
    found = {key: plain(getattr(result, key)) for key in fields if key not in ("value", "name")}
    return {"name": name, "value": plain(shown_value(result, numbers)),
            **{key: item for key, item in found.items() if item not in (None, [])}}


def dumps(found: dict[str, Any]) -> str:
    return json.dumps(found, allow_nan=False, default=str)
