"""DBR payloads: decoding against caproto's ctypes layouts, encoding puts with clear errors."""

from __future__ import annotations

import ctypes
import struct

import numpy as np
import pytest
from caproto import _dbr as caproto_dbr
from hypothesis import given
from hypothesis import strategies as st

from pvflow.ca.dbr import Form, Native, decoder, encode_put, payload_size
from pvflow.ca.protocol import EPICS_EPOCH

ELEMENT_FORMAT = {Native.SHORT: "h", Native.FLOAT: "f", Native.ENUM: "H", Native.CHAR: "B",
                  Native.LONG: "i", Native.DOUBLE: "d"}


@pytest.mark.parametrize("dbr_type", [t for t in range(28) if t % 7 or t < 21])
def test_value_offsets_match_epics_layouts(dbr_type: int) -> None:
    if dbr_type < 7:
        assert decoder(dbr_type).value_offset == 0
    else:
        assert decoder(dbr_type).value_offset == ctypes.sizeof(caproto_dbr.DBR_TYPES[dbr_type])


@pytest.mark.parametrize("native", [n for n in Native if n != Native.STRING])
def test_ctrl_string_is_sts_string_layout(native: Native) -> None:
    # db_access.h: dbr_size[DBR_CTRL_STRING] == sizeof(struct dbr_sts_string)
    assert decoder(Form.CTRL + Native.STRING).value_offset == 4
    assert decoder(Form.CTRL + native).value_offset == ctypes.sizeof(
        caproto_dbr.DBR_TYPES[Form.CTRL + native])


@given(value=st.floats(allow_nan=False), secs=st.integers(0, 2**32 - 1),
       nsec=st.integers(0, 999_999_999), severity=st.integers(0, 3), status=st.integers(0, 21))
def test_time_double_scalar(value: float, secs: int, nsec: int, severity: int,
                            status: int) -> None:
    meta = caproto_dbr.DBR_TIME_DOUBLE(status, severity, caproto_dbr.TimeStamp(secs, nsec))
    payload = bytes(meta) + struct.pack(">d", value)
    reading = decoder(Form.TIME + Native.DOUBLE).reading(payload, 0, len(payload), 1, as_array=False)
    assert reading.value == value
    assert (reading.severity, reading.status) == (severity, status)
    assert reading.timestamp == pytest.approx(EPICS_EPOCH + secs + nsec * 1e-9)


@given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=0, max_size=50))
def test_long_arrays_in_native_byte_order(values: list[int]) -> None:
    payload = b"\0" * 12 + struct.pack(f">{len(values)}i", *values)  # TIME_LONG prefix
    for owned in (False, True):
        array = decoder(Form.TIME + Native.LONG).value(bytearray(payload), 0, len(payload), len(values),
                                                        as_array=True, owned=owned)
        assert array.dtype.isnative
        assert array.tolist() == values


@pytest.mark.parametrize("native, code, dtype", [(Native.SHORT, "H", np.uint16),
                                                 (Native.LONG, "I", np.uint32)])
def test_unsigned_reading_keeps_the_high_bit(native: Native, code: str, dtype: type) -> None:
    top = np.iinfo(dtype).max
    values = [0, 1, top // 2, top // 2 + 1, top]
    prefix = bytes(14 if native == Native.SHORT else 12)  # TIME_SHORT has 2 bytes of padding
    payload = prefix + struct.pack(f">{len(values)}{code}", *values)
    for owned in (False, True):
        array = decoder(Form.TIME + native, unsigned=True).value(
            bytearray(payload), 0, len(payload), len(values), as_array=True, owned=owned)
        assert array.dtype == np.dtype(dtype) and array.tolist() == values
    scalar = prefix + struct.pack(f">{code}", top)
    assert decoder(Form.TIME + native, unsigned=True).value(scalar, 0, len(scalar), 1,
                                                            as_array=False) == top


def test_ctrl_double_metadata() -> None:
    meta = caproto_dbr.DBR_CTRL_DOUBLE()
    meta.status, meta.severity, meta.precision = 3, 1, 4
    meta.units = b"mm"
    (meta.upper_disp_limit, meta.lower_disp_limit, meta.upper_alarm_limit,
     meta.upper_warning_limit, meta.lower_warning_limit, meta.lower_alarm_limit,
     meta.upper_ctrl_limit, meta.lower_ctrl_limit) = (10, -10, 9, 8, -8, -9, 7, -7)
    payload = bytes(meta) + struct.pack(">d", 2.5)
    reading = decoder(Form.CTRL + Native.DOUBLE).reading(payload, 0, len(payload), 1, as_array=False)
    assert (reading.value, reading.units, reading.precision) == (2.5, "mm", 4)
    assert reading.display_limits == (-10, 10)
    assert reading.alarm_limits == (-9, 9)
    assert reading.warning_limits == (-8, 8)
    assert reading.control_limits == (-7, 7)
    assert (reading.status, reading.severity) == (3, 1)


def test_ctrl_enum_strings() -> None:
    meta = caproto_dbr.DBR_CTRL_ENUM()
    meta.no_str = 3
    for index, text in enumerate([b"zero", b"one", b"two"]):
        meta.strs[index].value = text
    payload = bytes(meta) + struct.pack(">H", 2)
    reading = decoder(Form.CTRL + Native.ENUM).reading(payload, 0, len(payload), 1, as_array=False)
    assert reading.value == 2
    assert reading.enum_strings == ("zero", "one", "two")


def test_string_arrays() -> None:
    payload = b"".join(text.ljust(40, b"\0") for text in (b"a", b"bc", b""))
    assert decoder(Native.STRING).value(payload, 0, 120, 3, as_array=True) == ["a", "bc", ""]
    assert decoder(Native.STRING).value(payload, 0, 120, 1, as_array=False) == "a"


@pytest.mark.parametrize("dbr_type, count, size", [(Form.TIME + Native.DOUBLE, 100, 24),
                                                   (Native.DOUBLE, 1, 4),
                                                   (Form.CTRL + Native.DOUBLE, 2, 60)])
def test_short_payloads_are_refused(dbr_type: int, count: int, size: int) -> None:
    buffer = bytes(4096)  # room beyond the payload must not be read
    with pytest.raises(ValueError, match="payload"):
        decoder(dbr_type).value(buffer, 0, size, count, as_array=count != 1)


@pytest.mark.parametrize("native, value, expected", [
    (Native.DOUBLE, 1.5, (Native.DOUBLE, 1, struct.pack(">d", 1.5))),
    (Native.LONG, 7, (Native.LONG, 1, struct.pack(">i", 7))),
    (Native.LONG, 7.0, (Native.LONG, 1, struct.pack(">i", 7))),
    (Native.LONG, 7.5, (Native.DOUBLE, 1, struct.pack(">d", 7.5))),
    (Native.SHORT, [1, 2], (Native.SHORT, 2, struct.pack(">2h", 1, 2))),
    (Native.STRING, "hi", (Native.STRING, 1, b"hi".ljust(40, b"\0"))),
    (Native.CHAR, "hey", (Native.CHAR, 4, b"hey\0")),
    (Native.DOUBLE, "2.5", (Native.DOUBLE, 1, struct.pack(">d", 2.5))),
    (Native.ENUM, "two", (Native.ENUM, 1, struct.pack(">H", 2))),
    (Native.DOUBLE, np.arange(3.0), (Native.DOUBLE, 3, np.arange(3.0).astype(">f8").tobytes())),
])
def test_encode_put(native: Native, value: object, expected: tuple[int, int, bytes]) -> None:
    count = 1 if native in (Native.STRING, Native.ENUM, Native.LONG) else 100
    if native == Native.DOUBLE and not isinstance(value, (float, str)):
        count = 100
    assert encode_put(native, count, value, ("zero", "one", "two")) == expected


@pytest.mark.parametrize("native, count, value, reason", [
    (Native.SHORT, 1, 40_000, "outside"),
    (Native.LONG, 1, float("nan"), "not finite"),
    (Native.DOUBLE, 1, "abc", "not a number"),
    (Native.DOUBLE, 2, [1, 2, 3], "holds 1 to 2"),
    (Native.DOUBLE, 1, None, "None"),
    (Native.STRING, 1, "x" * 40, "at most 39"),
    (Native.ENUM, 1, "three", "not one of"),
    (Native.ENUM, 1, 5, "not a valid index"),
    (Native.DOUBLE, 5, [[1, 2], [3]], "cannot make an array"),
    (Native.FLOAT, 1, 1e300, "32-bit float"),
    (Native.CHAR, 4, "too long", "does not fit"),
])
def test_encode_put_refuses_with_reason(native: Native, count: int, value: object,
                                         reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        encode_put(native, count, value, ("zero", "one", "two"))


def test_payload_size() -> None:
    assert payload_size(Form.TIME + Native.DOUBLE, 10) == 16 + 80
