"""Normative types to values and Readings, and values to put into them (codec layer, no I/O).

A :class:`View` is built once per received type: it knows the bits of ``value``,
``alarm.*``, ``timeStamp.*``, ``display.*`` ... so turning the flat leaves of a reply into a
:class:`~pvflow.reading.Reading` is a handful of list lookups. The Reading fields mean what
they mean for CA: ``status`` is the CA alarm condition when the server names one in
``alarm.message`` (qsrv does), else the pvAccess alarm status.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import compression
from ..reading import ALARM_STATUSES, Reading
from ..value_rules import as_numbers, check_fits
from .pvdata import ARRAY, NUMPY_CODES, STRUCT, FieldType, to_python

# qsrv puts menuAlarmStat names in alarm.message
CA_ALARM_CONDITIONS = {name: index for index, name in enumerate(ALARM_STATUSES)}
# pvData ScalarType, which NDPluginCodec stores in codec.parameters for the uncompressed type
SCALAR_TYPE_DTYPES = {0: "?", 1: "i1", 2: "i2", 3: "i4", 4: "i8", 5: "u1", 6: "u2", 7: "u4",
                      8: "u8", 9: "f4", 10: "f8"}

_PATHS = {
    "value": "value", "index": "value.index", "choices": "value.choices",
    "severity": "alarm.severity", "status": "alarm.status", "message": "alarm.message",
    "seconds": "timeStamp.secondsPastEpoch", "nanoseconds": "timeStamp.nanoseconds",
    "units": "display.units", "precision": "display.precision",
    "display_low": "display.limitLow", "display_high": "display.limitHigh",
    "control_low": "control.limitLow", "control_high": "control.limitHigh",
    "alarm_low": "valueAlarm.lowAlarmLimit", "alarm_high": "valueAlarm.highAlarmLimit",
    "warning_low": "valueAlarm.lowWarningLimit", "warning_high": "valueAlarm.highWarningLimit",
}


class NDImage(np.ndarray):
    """An NTNDArray's image: shaped by its dimensions (numpy order, slowest first), with
    ``attributes`` (name -> value), ``dimensions`` (the NTNDArray dimension structures),
    ``unique_id``, ``codec`` and ``data_timestamp`` (POSIX seconds, or None)."""

    attributes: dict[str, Any]
    dimensions: list[dict[str, Any]]
    unique_id: int
    codec: str
    data_timestamp: float | None

    def __array_finalize__(self, obj: Any) -> None:
        self.attributes = getattr(obj, "attributes", {})
        self.dimensions = getattr(obj, "dimensions", [])
        self.unique_id = getattr(obj, "unique_id", 0)
        self.codec = getattr(obj, "codec", "")
        self.data_timestamp = getattr(obj, "data_timestamp", None)


def _chars_text(value: Any) -> Any:
    """A byte array (qsrv's view of a CHAR waveform) as text, as CA's DBR_CHAR text reads."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.dtype.itemsize == 1:
        return value.tobytes().split(b"\0", 1)[0].decode("utf-8", "replace")
    return value


class View:
    """Where a type keeps what a Reading needs, and how to make its value."""

    __slots__ = ("ftype", "kind", "bits", "value_type")

    def __init__(self, ftype: FieldType):
        self.ftype = ftype
        self.bits = {key: ftype.paths.get(path) for key, path in _PATHS.items()}
        value_type = ftype.lookup("value")
        self.value_type = value_type
        type_id = ftype.type_id
        if type_id.startswith("epics:nt/NTNDArray:"):
            self.kind = "ndarray"
        elif type_id.startswith("epics:nt/NTTable:"):
            self.kind = "table"
        elif self.bits["index"] is not None and value_type is not None and \
                value_type.code == STRUCT:
            self.kind = "enum"
        elif value_type is not None and value_type.code != STRUCT:
            self.kind = "scalar"
        else:
            self.kind = "structure"

    @property
    def complete_with_value_only(self) -> bool:
        """Whether a ``field(value)`` request gives all this type's value needs."""
        return self.kind in ("scalar", "enum")

    def value(self, leaves: list[Any], as_string: bool = False) -> Any:
        kind = self.kind
        if kind == "scalar":
            value = leaves[self.bits["value"]]  # type: ignore[index]
            return _chars_text(value) if as_string else value
        if kind == "enum":
            index = leaves[self.bits["index"]]  # type: ignore[index]
            if as_string:
                choices = self._choices(leaves)
                return choices[index] if 0 <= index < len(choices) else str(index)
            return index
        if kind == "table":
            assert self.value_type is not None
            columns = to_python(self.value_type, leaves, self.bits["value"])  # type: ignore[arg-type]
            return dict(columns)
        if kind == "ndarray":
            return self._image(leaves)
        return to_python(self.ftype, leaves)

    def _choices(self, leaves: list[Any]) -> tuple[str, ...]:
        bit = self.bits["choices"]
        found = leaves[bit] if bit is not None else None
        return tuple(found) if found else ()

    def reading(self, leaves: list[Any], as_string: bool = False) -> Reading:
        bits = self.bits

        def get(key: str) -> Any:
            bit = bits[key]
            return None if bit is None else leaves[bit]

        seconds = get("seconds")
        timestamp = None if seconds is None else seconds + (get("nanoseconds") or 0) * 1e-9
        message = get("message")
        status = CA_ALARM_CONDITIONS.get(message) if message else None
        if status is None:
            status = get("status") or 0
        return Reading(
            self.value(leaves, as_string), timestamp, get("severity") or 0, status,
            units=get("units"), precision=get("precision"),
            display_limits=_pair(get("display_low"), get("display_high")),
            alarm_limits=_pair(get("alarm_low"), get("alarm_high")),
            warning_limits=_pair(get("warning_low"), get("warning_high")),
            control_limits=_pair(get("control_low"), get("control_high")),
            enum_strings=self._choices(leaves) if self.kind == "enum" else ())

    def _image(self, leaves: list[Any]) -> NDImage | None:
        data = to_python(self.ftype, leaves)
        pixels = data.get("value")
        if pixels is None:
            return None
        codec = (data.get("codec") or {}).get("name") or ""
        if codec:
            parameter = (data.get("codec") or {}).get("parameters")
            dtype = np.dtype(SCALAR_TYPE_DTYPES.get(parameter, pixels.dtype.str)
                             if isinstance(parameter, int) else pixels.dtype)
            pixels = compression.decompress(codec, pixels, dtype, int(data["uncompressedSize"]))
        dimensions = list(data.get("dimension") or [])
        shape = [int(dimension["size"]) for dimension in reversed(dimensions) if dimension]
        if shape and int(np.prod(shape)) == pixels.size:
            pixels = pixels.reshape(shape)
        image: NDImage = pixels.view(NDImage)
        image.attributes = {attribute["name"]: attribute.get("value")
                            for attribute in data.get("attribute") or [] if attribute}
        image.dimensions = dimensions
        image.unique_id = data.get("uniqueId") or 0
        image.codec = codec
        stamp = data.get("dataTimeStamp") or {}
        image.data_timestamp = (stamp["secondsPastEpoch"] + stamp["nanoseconds"] * 1e-9
                                if stamp.get("secondsPastEpoch") is not None else None)
        return image


def _pair(low: Any, high: Any) -> tuple[float, float] | None:
    return None if low is None or high is None else (low, high)


_VIEWS: dict[FieldType, View] = {}


def view_of(ftype: FieldType) -> View:
    found = _VIEWS.get(ftype)
    if found is None:
        found = View(ftype)
        if len(_VIEWS) < 10_000:
            _VIEWS[ftype] = found
    return found


def table_as_structured_array(columns: dict[str, Any]) -> np.ndarray:
    """An NTTable's columns (as ``get`` returns them) as one numpy structured array."""
    arrays = {name: np.asarray(column) for name, column in columns.items()}
    length = max((len(array) for array in arrays.values()), default=0)
    dtype = [(name, array.dtype if array.dtype.kind != "U" else object)
             for name, array in arrays.items()]
    table = np.zeros(length, dtype=dtype)
    for name, array in arrays.items():
        table[name][:len(array)] = array
    return table


# --- values to put ------------------------------------------------------------------------------------
def put_values(ftype: FieldType, value: Any, choices: tuple[str, ...] = ()) -> dict[int, Any]:
    """``{bit: value}`` for a PUT of ``value`` into a structure of type ``ftype``.

    A dict sets the fields it names (nested dicts or dotted keys); anything else sets
    ``value`` (an enum's ``value.index``, by index or by one of ``choices``; an NTTable's
    columns from a dict of columns).
    """
    if value is None:
        raise ValueError("None is not a value")
    if isinstance(value, dict) and not (ftype.type_id.startswith("epics:nt/NTTable:")
                                        and "value" not in value):
        return _flatten(ftype, value, "")
    view = view_of(ftype)
    if view.kind == "enum":
        if isinstance(value, str):
            if value not in choices:
                if value.strip().isdigit():
                    return {view.bits["index"]: int(value)}  # type: ignore[dict-item]
                raise ValueError(f"{value!r} is not one of {list(choices)}")
            value = choices.index(value)
        return {view.bits["index"]: int(value)}  # type: ignore[dict-item]
    if view.kind == "table" and isinstance(value, dict):
        return _flatten(ftype, {"value": value}, "")
    bit = view.bits["value"]
    if bit is None:
        raise ValueError(f"{ftype.describe()} has no value field: put a dict of fields")
    node = ftype.nodes[bit]
    if node.code == STRUCT:
        raise ValueError(f"value of {ftype.describe()} is a structure: put a dict of fields")
    if not node.is_array and isinstance(value, (list, tuple, np.ndarray)):
        raise ValueError(f"value is a scalar {node.describe()}, not an array")
    if node.describe() not in ("string", "string[]") and isinstance(value, str):
        try:
            value = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    return {bit: checked_leaf(node, value)}


def checked_leaf(node: FieldType, value: Any) -> Any:
    """``value`` for a numeric field ``node``, refused as Channel Access refuses it (None,
    not a number, NaN into an integer, out of the type's range) before it is encoded."""
    element = NUMPY_CODES.get(node.code & ~ARRAY)
    if element is None or element == "?":
        return value
    numbers = as_numbers(value)
    if not node.is_array and numbers.size != 1:
        raise ValueError(f"{numbers.size} elements given for a scalar {node.describe()}")
    check_fits(numbers, np.dtype(element), value)
    return value


def _flatten(ftype: FieldType, value: dict[str, Any], prefix: str) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for key, item in value.items():
        path = prefix + key
        bit = ftype.paths.get(path)
        if bit is None:
            raise ValueError(f"no field {path!r} in {ftype.describe()}")
        if ftype.nodes[bit].code == STRUCT and isinstance(item, dict):
            found.update(_flatten(ftype, item, path + "."))
        else:
            found[bit] = checked_leaf(ftype.nodes[bit], item)
    return found
