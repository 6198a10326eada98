"""Converters between pvflow values and ophyd-async datatypes (integration layer, no I/O).

The same coercions as ophyd-async's own CA backend (``_aioca.make_converter``): enums to str
or to a StrictEnum / SubsetEnum / SupersetEnum, two-state enums (and CHAR/SHORT) to bool,
char waveforms to str, float records with PREC=0 to int, arrays to ``Array1D[...]``, string
arrays to ``Sequence[str]``. One table keyed by ``(native type, is_array)`` gives the
inferred datatype and converter; the overrides follow it in the same order as upstream, with
the same error messages.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ophyd_async.core import Array1D, SignalMetadata, get_enum_cls
from ophyd_async.epics.core._util import format_datatype, get_supported_values

from ..chars import decode_chars, encode_chars
from ..reading import Reading


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

    def __init__(self, element_count: int):
        super().__init__(str)
        self.element_count = element_count

    def value(self, value: Any) -> str:
        return decode_chars(value)

    def write_value(self, value: Any) -> Any:
        return encode_chars(value, self.element_count)


class BoolConverter(Converter):
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


INFERRED: dict[tuple[str, bool], tuple[Any, type[Converter]]] = {
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
}


def make_converter(pv: str, datatype: Any, native_type: str, element_count: int,
                   reading: Reading) -> Converter:
    """The converter for a PV of ``native_type`` whose CTRL reading is ``reading``, checked
    against the requested ``datatype`` (None: infer)."""
    is_array = element_count > 1
    if datatype == typing.Sequence[str]:
        datatype = Sequence[str]
    try:
        inferred, converter_class = INFERRED[(native_type, is_array)]
    except KeyError:
        raise TypeError(f"{pv} has native type {native_type}, which has no converter") from None
    choices = tuple(reading.enum_strings)
    if is_array and native_type == "CHAR" and datatype is str:
        return LongStrConverter(element_count)
    if not is_array and datatype is bool and native_type == "ENUM":
        if len(choices) != 2:
            raise TypeError(f"{pv} has {len(choices)} choices, can't map to bool")
        return BoolConverter()
    if not is_array and native_type in ("CHAR", "SHORT") and datatype is bool:
        return BoolConverter()
    if not is_array and native_type == "ENUM":
        if enum_class := get_enum_cls(datatype):
            return EnumConverter(choices, get_supported_values(pv, enum_class, choices))
        if datatype in (None, str):
            return EnumConverter(choices)
    elif inferred is float and datatype is int and reading.precision == 0:
        return IntConverter(int)
    elif datatype in (None, inferred):
        return converter_class(inferred)
    if native_type == "ENUM":
        inferred = "str | SubsetEnum | StrictEnum"
    raise TypeError(f"{pv} with inferred datatype {format_datatype(inferred)}"
                    f" cannot be coerced to {format_datatype(datatype)}")
