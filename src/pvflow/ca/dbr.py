"""DBR payloads: CA's data types, their STS/TIME/GR/CTRL forms, values in and out (codec layer).

Pure functions on buffers. Scalars decode with one precompiled ``struct`` call per payload
(metadata and value together); arrays become numpy arrays whose byte order is fixed once:
a copy out of a shared receive buffer (``astype`` swaps while copying), or an in-place swap
when the caller hands over a buffer it will not reuse (``owned=True``), so a 1e6-element
waveform is never copied twice.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

import numpy as np

from ..reading import Reading, time_reading
from ..value_rules import as_numbers, check_fits
from .protocol import EPICS_EPOCH

STRING_SIZE = 40  # MAX_STRING_SIZE
ENUM_STRING_SIZE = 26  # MAX_ENUM_STRING_SIZE
ENUM_STATES = 16  # MAX_ENUM_STATES


class Native(IntEnum):
    """The seven native DBR types (``DBR_INT`` is ``SHORT``)."""

    STRING = 0
    SHORT = 1
    FLOAT = 2
    ENUM = 3
    CHAR = 4
    LONG = 5
    DOUBLE = 6


NATIVES = tuple(Native)  # index -> member, cheaper than Native(n) on the connect path


class Form(IntEnum):
    """Offsets of the DBR families: ``dbr_type = form + native``."""

    PLAIN = 0
    STS = 7
    TIME = 14
    GR = 21
    CTRL = 28


FORM_NAMES = {"value": Form.PLAIN, "plain": Form.PLAIN, "sts": Form.STS, "time": Form.TIME,
              "gr": Form.GR, "ctrl": Form.CTRL}

_ELEMENT_CODE = {Native.SHORT: "h", Native.FLOAT: "f", Native.ENUM: "H", Native.CHAR: "B",
                 Native.LONG: "i", Native.DOUBLE: "d"}
ELEMENT_DTYPE = {Native.STRING: np.dtype("S40"), Native.SHORT: np.dtype(">i2"),
                 Native.FLOAT: np.dtype(">f4"), Native.ENUM: np.dtype(">u2"),
                 Native.CHAR: np.dtype("u1"), Native.LONG: np.dtype(">i4"),
                 Native.DOUBLE: np.dtype(">f8")}
NATIVE_ORDER_DTYPE = {native: dtype.newbyteorder("=") for native, dtype in ELEMENT_DTYPE.items()}
ELEMENT_SIZE = {native: dtype.itemsize for native, dtype in ELEMENT_DTYPE.items()}

# Metadata before the value, per form and native type (db_access.h layouts, padding included).
# Fields: s=status h=severity; T=secs,nsec; P=precision(+pad); U=units; Ln=n limits; E=enum strings.
_PREFIX_FORMATS: dict[tuple[Form, Native], tuple[str, str]] = {}
for _native in Native:
    code = _ELEMENT_CODE.get(_native, "h")
    sts_pad = {Native.CHAR: "x", Native.DOUBLE: "4x"}.get(_native, "")
    time_pad = {Native.SHORT: "2x", Native.ENUM: "2x", Native.CHAR: "3x",
                Native.DOUBLE: "4x"}.get(_native, "")
    _PREFIX_FORMATS[(Form.PLAIN, _native)] = ("", "")
    _PREFIX_FORMATS[(Form.STS, _native)] = ("hh" + sts_pad, "sh")
    _PREFIX_FORMATS[(Form.TIME, _native)] = ("hhII" + time_pad, "shT")
    for form, n_limits in ((Form.GR, 6), (Form.CTRL, 8)):
        if _native == Native.STRING:
            layout = ("hh", "sh")
        elif _native == Native.ENUM:
            layout = (f"hhh{ENUM_STATES * ENUM_STRING_SIZE}s", "shE")
        elif _native in (Native.FLOAT, Native.DOUBLE):
            layout = (f"hhh2x8s{n_limits}{code}", f"shPUL{n_limits}")
        elif _native == Native.CHAR:
            layout = (f"hh8s{n_limits}Bx", f"shUL{n_limits}")
        else:
            layout = (f"hh8s{n_limits}{code}", f"shUL{n_limits}")
        _PREFIX_FORMATS[(form, _native)] = layout


def split_type(dbr_type: int) -> tuple[Form, Native]:
    """``DBR_CTRL_DOUBLE`` -> ``(Form.CTRL, Native.DOUBLE)``; ``ValueError`` for others."""
    if not 0 <= dbr_type < 35:
        raise ValueError(f"unsupported DBR type {dbr_type}")
    return Form(dbr_type - dbr_type % 7), Native(dbr_type % 7)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _metadata(fields: str, values: Sequence[Any]) -> dict[str, Any]:
    """Turn the prefix fields of a GR/CTRL/TIME/STS payload into ``Reading`` keyword arguments."""
    meta: dict[str, Any] = {}
    position = 0
    index = 0
    while index < len(fields):
        tag = fields[index]
        index += 1
        if tag == "s":
            meta["status"] = values[position]
            position += 1
        elif tag == "h":
            meta["severity"] = values[position]
            position += 1
        elif tag == "T":
            secs, nsec = values[position], values[position + 1]
            meta["timestamp"] = EPICS_EPOCH + secs + nsec * 1e-9
            position += 2
        elif tag == "P":
            meta["precision"] = values[position]
            position += 1
        elif tag == "U":
            meta["units"] = _text(values[position])
            position += 1
        elif tag == "E":
            count, raw = values[position], values[position + 1]
            count = max(0, min(count, ENUM_STATES))
            meta["enum_strings"] = tuple(
                _text(raw[i * ENUM_STRING_SIZE:(i + 1) * ENUM_STRING_SIZE]) for i in range(count))
            position += 2
        elif tag == "L":
            n_limits = int(fields[index])
            index += 1
            limits = values[position:position + n_limits]
            meta["display_limits"] = (limits[1], limits[0])
            meta["alarm_limits"] = (limits[5], limits[2])
            meta["warning_limits"] = (limits[4], limits[3])
            if n_limits == 8:
                meta["control_limits"] = (limits[7], limits[6])
            position += n_limits
    return meta


class Decoder:
    """Decodes payloads of one DBR type; built once per type and reused for every message."""

    __slots__ = ("dbr_type", "form", "native", "prefix", "fields", "value_offset", "_scalar",
                 "_dtype", "_native_dtype", "_string", "_time")

    def __init__(self, dbr_type: int):
        self.dbr_type = dbr_type
        self.form, self.native = split_type(dbr_type)
        prefix_format, self.fields = _PREFIX_FORMATS[(self.form, self.native)]
        self.prefix = struct.Struct(">" + prefix_format)
        self.value_offset = self.prefix.size
        value_code = "40s" if self.native == Native.STRING else _ELEMENT_CODE[self.native]
        self._scalar = struct.Struct(">" + prefix_format + value_code)
        self._dtype = ELEMENT_DTYPE[self.native]
        self._native_dtype = NATIVE_ORDER_DTYPE[self.native]
        self._string = self.native == Native.STRING
        self._time = self.fields == "shT"  # status, severity, time: the common case, made fast

    def value(self, buffer: Any, offset: int, end: int, count: int, as_array: bool,
              owned: bool = False) -> Any:
        """The bare value of the payload ``buffer[offset:end]``; ``as_array`` False gives a
        Python scalar (or str) for count 1. ``ValueError`` if the payload is shorter than
        ``count`` elements."""
        if not as_array and count == 1:
            if end - offset < self._scalar.size:
                raise ValueError(f"{end - offset}-byte payload for one DBR type "
                                 f"{self.dbr_type} value")
            item = self._scalar.unpack_from(buffer, offset)[-1]
            return _text(item) if self._string else item
        return self._array(buffer, offset + self.value_offset, end, count, owned)

    def reading(self, buffer: Any, offset: int, end: int, count: int, as_array: bool,
                owned: bool = False) -> Reading:
        if not as_array and count == 1:
            if end - offset < self._scalar.size:
                raise ValueError(f"{end - offset}-byte payload for one DBR type "
                                 f"{self.dbr_type} value")
            values = self._scalar.unpack_from(buffer, offset)
            value = _text(values[-1]) if self._string else values[-1]
        else:
            if end - offset < self.value_offset:
                raise ValueError(f"{end - offset}-byte payload for DBR type {self.dbr_type}")
            values = self.prefix.unpack_from(buffer, offset)
            value = self._array(buffer, offset + self.value_offset, end, count, owned)
        if self._time:
            return time_reading(value, EPICS_EPOCH + values[2] + values[3] * 1e-9, values[1],
                                values[0])
        return Reading(value, **_metadata(self.fields, values))

    def _array(self, buffer: Any, offset: int, end: int, count: int, owned: bool) -> Any:
        if offset + count * self._dtype.itemsize > end:
            raise ValueError(f"{end - offset}-byte payload for {count} elements of DBR type "
                             f"{self.dbr_type}")
        if self.native == Native.STRING:
            raw = np.frombuffer(buffer, self._dtype, count, offset)
            return [_text(item) for item in raw.tolist()]
        array = np.frombuffer(buffer, self._dtype, count, offset)
        if self._dtype.itemsize == 1:
            return array if owned else array.copy()
        if owned:  # the buffer is ours alone: swap in place, no second copy of a big waveform
            return array.byteswap(inplace=True).view(self._native_dtype)
        return array.astype(self._native_dtype)


class CharTextDecoder(Decoder):
    """A char waveform read as text (file names, messages): bytes up to the first NUL."""

    __slots__ = ()

    def _array(self, buffer: Any, offset: int, end: int, count: int, owned: bool) -> Any:
        if offset + count > end:
            raise ValueError(f"{end - offset}-byte payload for {count} chars")
        return _text(bytes(buffer[offset:offset + count]))


_DECODERS: dict[tuple[int, bool, bool], Decoder] = {}


class UnsignedDecoder(Decoder):
    """SHORT read as ``uint16``, LONG as ``uint32``: CA has no unsigned types, so a client
    that knows the field is unsigned asks for the signed type of its size and takes the bits
    as they are (a server sends an unsigned short field as LONG otherwise: twice the bytes)."""

    __slots__ = ("_unsigned",)

    def __init__(self, dbr_type: int):
        super().__init__(dbr_type)
        if self.native not in UNSIGNED_OF:
            raise ValueError(f"DBR type {dbr_type} has no unsigned reading")
        self._unsigned = UNSIGNED_OF[self.native]
        prefix = self.prefix.format[1:]
        self._scalar = struct.Struct(">" + prefix + self._unsigned.char)

    def _array(self, buffer: Any, offset: int, end: int, count: int, owned: bool) -> Any:
        return super()._array(buffer, offset, end, count, owned).view(self._unsigned)


# the CA type whose bits hold each unsigned numpy type (CHAR is unsigned already)
UNSIGNED_OF: dict[Native, np.dtype[Any]] = {Native.SHORT: np.dtype(np.uint16),
                                            Native.LONG: np.dtype(np.uint32)}
UNSIGNED_REQUEST: dict[np.dtype[Any], Native] = {
    np.dtype(np.uint8): Native.CHAR, np.dtype(np.uint16): Native.SHORT,
    np.dtype(np.uint32): Native.LONG}


def decoder(dbr_type: int, text: bool = False, unsigned: bool = False) -> Decoder:
    """The shared decoder of ``dbr_type``; ``text`` makes char arrays come out as ``str``,
    ``unsigned`` SHORT and LONG values as ``uint16`` and ``uint32``."""
    key = (dbr_type, text, unsigned)
    found = _DECODERS.get(key)
    if found is None:
        native = dbr_type % 7
        kind = CharTextDecoder if text and native == Native.CHAR else \
            UnsignedDecoder if unsigned and native in UNSIGNED_OF else Decoder
        found = _DECODERS[key] = kind(dbr_type)
    return found


DECODERS = [decoder(dbr_type) for dbr_type in range(35)]  # by DBR type: the bulk read table
# plain numeric scalars by DBR type (None for strings and non-plain forms): one unpack each
PLAIN_SCALARS = [struct.Struct(">" + _ELEMENT_CODE[Native(t)]) if t in _ELEMENT_CODE else None
                 for t in range(35)]


def payload_size(dbr_type: int, count: int) -> int:
    """Bytes a payload of ``count`` elements occupies before padding."""
    native = split_type(dbr_type)[1]
    return decoder(dbr_type).value_offset + ELEMENT_SIZE[native] * count


# --- encoding values for put -----------------------------------------------------------------

def _encode_strings(value: Any, max_count: int) -> tuple[int, int, bytes]:
    items = [value] if isinstance(value, (str, bytes)) or np.ndim(value) == 0 else list(value)
    if not 0 < len(items) <= max_count:
        raise ValueError(f"{len(items)} strings given, the PV holds 1 to {max_count}")
    chunks = []
    for item in items:
        raw = item if isinstance(item, bytes) else str(item).encode()
        if len(raw) >= STRING_SIZE:
            raise ValueError(f"string {item!r} is {len(raw)} bytes; CA strings hold at most 39")
        chunks.append(raw.ljust(STRING_SIZE, b"\0"))
    return Native.STRING, len(items), b"".join(chunks)


def _encode_char_text(value: str | bytes, max_count: int) -> tuple[int, int, bytes]:
    raw = (value.encode() if isinstance(value, str) else value) + b"\0"
    if len(raw) - 1 > max_count:
        raise ValueError(f"text of {len(raw) - 1} bytes does not fit {max_count} chars")
    raw = raw[:max_count] if len(raw) > max_count else raw
    return Native.CHAR, len(raw), raw


_DOUBLE = struct.Struct(">d")


def encode_put(native: Native, max_count: int, value: Any,
               enum_strings: Sequence[str] = ()) -> tuple[int, int, bytes]:
    """``(dbr_type, count, payload)`` carrying ``value`` to a channel of type ``native``.

    Raises ``ValueError`` with the reason for anything the channel cannot hold, before a byte
    is sent: out of range, NaN into an integer, too many elements, an unknown enum choice.
    Non-integral numbers for integer channels travel as DOUBLE, so the record converts them as
    it would for caput.
    """
    if type(value) is float and native == Native.DOUBLE:  # the common put: no numpy for it
        return Native.DOUBLE, 1, _DOUBLE.pack(value)
    if value is None:
        raise ValueError("None is not a value")
    if native == Native.STRING:
        return _encode_strings(value, max_count)
    if native == Native.CHAR and max_count > 1 and isinstance(value, (str, bytes)):
        return _encode_char_text(value, max_count)
    if native == Native.ENUM and isinstance(value, str):
        if enum_strings and value in enum_strings:
            value = list(enum_strings).index(value)
        else:
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"{value!r} is not one of {list(enum_strings)}") from None
    numbers = as_numbers(value)
    if not 0 < numbers.size <= max_count:
        raise ValueError(f"{numbers.size} elements given, the PV holds 1 to {max_count}")
    if native == Native.ENUM and enum_strings and numbers.size == 1 and not (
            0 <= numbers[0] < len(enum_strings)):
        raise ValueError(f"{numbers[0]} is not a valid index of {list(enum_strings)}")
    check_fits(numbers, ELEMENT_DTYPE[native], value)
    target = native
    if ELEMENT_DTYPE[native].kind in "iu" and numbers.dtype.kind == "f" and \
            not np.all(numbers == np.round(numbers)):
        target = Native.DOUBLE
    payload = numbers.astype(ELEMENT_DTYPE[target]).tobytes()
    return target, int(numbers.size), payload
