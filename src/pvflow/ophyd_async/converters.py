"""Converters between pvflow values and ophyd-async datatypes (integration layer, no I/O).

The same coercions as ophyd-async's own backends (``_aioca.make_converter`` and
``_p4p.make_converter``): enums to str or to a StrictEnum / SubsetEnum / SupersetEnum,
two-state enums (and integer scalars) to bool, char waveforms to str, float records with
PREC=0 to int, arrays to ``Array1D[...]``, string arrays to ``Sequence[str]``, and over
pvAccess NTTable to ``Table`` (or a subclass) and NTNDArray to ``np.ndarray``. One table keyed
by ``(native type, is_array)`` gives the inferred datatype and converter for both protocols;
the overrides follow it in the same order as upstream, with the same error messages.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from event_model import Limits, LimitsRange
from ophyd_async.core import Array1D, SignalMetadata, Table, get_enum_cls

from ..chars import decode_chars, encode_chars
from ..reading import Reading
from .datatypes import datatype_name, supported_values


@dataclass(frozen=True)
class Native:
    """What a PV holds, in its protocol's words: a CA DBR type (``"DOUBLE"``) or a pvData
    type (``"double"``, ``"enum"``, ``"table"``...), whether it is an array, and for CA how
    many elements it can hold."""

    type: str
    is_array: bool
    capacity: int | None = None


class Converter:
    """Passes values through; subclasses change the shape on the way in or out."""

    def __init__(self, datatype: Any, metadata: SignalMetadata | None = None):
        self.datatype = datatype
        self.metadata = metadata or SignalMetadata()

    def value(self, value: Any) -> Any:
        return value

    def write_value(self, value: Any) -> Any:
        return value


class IntConverter(Converter):
    def value(self, value: Any) -> int:
        return int(value)


class FloatConverter(Converter):
    def value(self, value: Any) -> float:
        return float(value)


class ArrayConverter(Converter):
    def value(self, value: Any) -> np.ndarray:
        return np.asarray(value, dtype=typing.get_args(typing.get_args(self.datatype)[1])[0])


class SequenceStrConverter(Converter):
    def value(self, value: Any) -> Sequence[str]:
        return [str(item) for item in np.atleast_1d(value)]


class LongStrConverter(Converter):
    """A char waveform read and written as text."""

    def __init__(self, capacity: int | None):
        super().__init__(str)
        self.capacity = capacity

    def value(self, value: Any) -> str:
        return decode_chars(value)

    def write_value(self, value: Any) -> np.ndarray:
        # unsigned bytes: pvAccess waveforms of CHAR are signed and take them bit for bit
        return np.array(encode_chars(value, self.capacity), dtype=np.uint8)


class BoolConverter(Converter):
    """An enum's index or an integer as a bool."""

    def __init__(self) -> None:
        super().__init__(bool)

    def value(self, value: Any) -> bool:
        return bool(value)

    def write_value(self, value: Any) -> int:
        return int(value)


class EnumConverter(Converter):
    """Enum index from the wire to a label (or Enum member), labels back to the wire."""

    def __init__(self, choices: Sequence[str], supported: Mapping[str, Any] | None = None):
        super().__init__(str, SignalMetadata(choices=list(choices)))
        self.choices = tuple(choices)
        self.supported = supported

    def value(self, value: Any) -> Any:
        label = value if isinstance(value, str) else self.choices[int(value)]
        return self.supported[label] if self.supported is not None else label

    def write_value(self, value: Any) -> Any:
        return value.value if hasattr(value, "value") else value


class TableConverter(Converter):
    """An NTTable's columns as a ``Table`` (or the requested subclass, which picks each
    column's dtype); a Table is written back as its columns."""

    def value(self, value: Any) -> Table:
        return self.datatype(**value)

    def write_value(self, value: Any) -> Any:
        return value.model_dump(mode="python") if isinstance(value, Table) else value


class NDArrayConverter(Converter):
    """An NTNDArray's image, already shaped (slowest dimension first)."""

    def value(self, value: Any) -> np.ndarray:
        return np.asarray(value)

    def write_value(self, value: Any) -> Any:
        # as ophyd-async: a server-side image is written by the driver, not by a client
        raise TypeError("Writing to NDArray not supported")


# pvData types of numeric arrays, by the numpy dtype pvflow decodes them into
_PVA_ARRAYS = {np.dtype(numpy_type): name for numpy_type, name in (
    (np.bool_, "boolean"), (np.int8, "byte"), (np.uint8, "ubyte"), (np.int16, "short"),
    (np.uint16, "ushort"), (np.int32, "int"), (np.uint32, "uint"), (np.int64, "long"),
    (np.uint64, "ulong"), (np.float32, "float"), (np.float64, "double"))}

INFERRED: dict[tuple[str, bool], tuple[Any, type[Converter]]] = {
    # Channel Access: the channel's DBR type
    ("STRING", False): (str, Converter),
    ("SHORT", False): (int, IntConverter),
    ("FLOAT", False): (float, FloatConverter),
    ("ENUM", False): (str, Converter),
    ("CHAR", False): (int, IntConverter),
    ("LONG", False): (int, IntConverter),
    ("DOUBLE", False): (float, FloatConverter),
    ("STRING", True): (Sequence[str], SequenceStrConverter),
    ("SHORT", True): (Array1D[np.int16], ArrayConverter),
    ("FLOAT", True): (Array1D[np.float32], ArrayConverter),
    ("ENUM", True): (Sequence[str], SequenceStrConverter),
    ("CHAR", True): (Array1D[np.uint8], ArrayConverter),
    ("LONG", True): (Array1D[np.int32], ArrayConverter),
    ("DOUBLE", True): (Array1D[np.float64], ArrayConverter),
    # pvAccess: pvData types read off the value (see pva_native), normative types by kind
    ("boolean", False): (bool, Converter),
    ("long", False): (int, IntConverter),
    ("double", False): (float, FloatConverter),
    ("string", False): (str, Converter),
    ("enum", False): (str, Converter),
    ("table", False): (Table, TableConverter),
    ("ndarray", False): (np.ndarray, NDArrayConverter),
    ("string", True): (Sequence[str], SequenceStrConverter),
    ("boolean", True): (Array1D[np.bool_], ArrayConverter),
    ("byte", True): (Array1D[np.int8], ArrayConverter),
    ("ubyte", True): (Array1D[np.uint8], ArrayConverter),
    ("short", True): (Array1D[np.int16], ArrayConverter),
    ("ushort", True): (Array1D[np.uint16], ArrayConverter),
    ("int", True): (Array1D[np.int32], ArrayConverter),
    ("uint", True): (Array1D[np.uint32], ArrayConverter),
    ("long", True): (Array1D[np.int64], ArrayConverter),
    ("ulong", True): (Array1D[np.uint64], ArrayConverter),
    ("float", True): (Array1D[np.float32], ArrayConverter),
    ("double", True): (Array1D[np.float64], ArrayConverter),
}
_ENUMS = ("ENUM", "enum")
_CHARS = ("CHAR", "byte")  # waveforms of CHAR: unsigned over CA, signed over pvAccess
# integer scalars that may stand for a bool; a pvAccess integer's width does not survive
# decoding, so "long" is every one of them
_BOOLEAN_INTEGERS = ("CHAR", "SHORT", "long")


def pva_native(reading: Reading) -> Native:
    """A pvAccess PV's type, read off a value pvflow decoded: a scalar's Python type, an
    array's dtype, an enum by its choices, an NTTable as a dict of columns, an NTNDArray
    as an image with ``dimensions``."""
    value = reading.value
    if reading.enum_strings:
        return Native("enum", False)
    if isinstance(value, dict):
        columns = all(isinstance(column, (list, np.ndarray)) for column in value.values())
        return Native("table" if columns else "structure", False)
    if isinstance(value, np.ndarray):
        if hasattr(value, "dimensions"):
            return Native("ndarray", False)
        return Native(_PVA_ARRAYS.get(value.dtype, str(value.dtype)), True)
    if isinstance(value, list):
        return Native("string", True)
    for python_type, name in ((bool, "boolean"), (int, "long"), (float, "double"),
                              (str, "string")):
        if isinstance(value, python_type):
            return Native(name, False)
    return Native(type(value).__name__, False)


def make_converter(pv: str, datatype: Any, native: Native, reading: Reading) -> Converter:
    """The converter for a PV holding ``native`` whose CTRL reading is ``reading``, checked
    against the requested ``datatype`` (None: infer)."""
    if datatype == typing.Sequence[str]:
        datatype = Sequence[str]
    try:
        inferred, converter_class = INFERRED[(native.type, native.is_array)]
    except KeyError:
        raise TypeError(f"{pv} has native type {native.type}, which has no converter") from None
    scalar = not native.is_array
    choices = tuple(reading.enum_strings)
    enum_class = get_enum_cls(datatype)
    if native.is_array and native.type in _CHARS and datatype is str:
        return LongStrConverter(native.capacity)
    if scalar and datatype is bool and native.type in _ENUMS:
        if len(choices) != 2:
            raise TypeError(f"{pv} has {len(choices)} choices, can't map to bool")
        return BoolConverter()
    if scalar and datatype is bool and native.type in _BOOLEAN_INTEGERS:
        return BoolConverter()
    if scalar and native.type in _ENUMS:
        if enum_class:
            return EnumConverter(choices, supported_values(pv, enum_class, choices))
        if datatype in (None, str):
            return EnumConverter(choices)
    elif inferred is float and datatype is int and reading.precision == 0:
        return IntConverter(int)
    elif native.type == "string" and scalar and enum_class:
        return Converter(str)  # as ophyd-async: a string PV may stand in for an enum
    elif inferred is Table and isinstance(datatype, type) and issubclass(datatype, Table):
        return TableConverter(datatype)
    elif datatype in (None, inferred):
        return converter_class(inferred)
    if native.type in _ENUMS:
        inferred = "str | SubsetEnum | StrictEnum"
    raise TypeError(f"{pv} with inferred datatype {datatype_name(inferred)}"
                    f" cannot be coerced to {datatype_name(datatype)}")


_LIMIT_NAMES = (("alarm", "alarm_limits"), ("control", "control_limits"),
                ("display", "display_limits"), ("warning", "warning_limits"))


def _limits(reading: Reading) -> Limits:
    limits = Limits()
    for key, attribute in _LIMIT_NAMES:
        found = getattr(reading, attribute)
        if found is None:
            continue
        low, high = found
        if (np.isnan(low) and np.isnan(high)) or low == high == 0:
            continue
        limits[key] = LimitsRange(  # type: ignore[literal-required]
            low=None if np.isnan(low) else low,
            high=None if np.isnan(high) else high)
    return limits


def metadata(converter: Converter, reading: Reading) -> SignalMetadata:
    """ophyd-async's rules: units and limits belong to numbers (not shown as str or bool),
    precision to floating-point numbers (not shown as int). pvAccess servers send units and
    precision for strings too, so the value's kind decides, not what the server sent."""
    found = converter.metadata.copy()
    kind = np.asarray(reading.value).dtype.kind
    datatype = converter.datatype
    if reading.units is not None and kind in "iuf" and datatype not in (str, bool):
        found["units"] = reading.units
    if reading.precision is not None and kind == "f" and datatype is not int:
        found["precision"] = reading.precision
    if kind in "iuf" and datatype is not bool and (limits := _limits(reading)):
        found["limits"] = limits
    return found
