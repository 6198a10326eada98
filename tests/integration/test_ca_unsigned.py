"""Unsigned arrays over CA: asked for as the signed type of their size, delivered unsigned.

CA has no unsigned types: rsrv sends a USHORT waveform as LONG (4 bytes per element) and a
ULONG one as DOUBLE. A monitor with ``dtype="uint16"`` asks for SHORT and must give back
every value, those above 32767 included, as the record holds it.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pvflow import Context
from tests.servers import SoftIoc

DB = """
record(waveform, "U:ushorts") { field(FTVL, "USHORT") field(NELM, "8") }
record(waveform, "U:ulongs") { field(FTVL, "ULONG") field(NELM, "4") }
record(waveform, "U:doubles") { field(FTVL, "DOUBLE") field(NELM, "4") }
"""
USHORTS = np.array([0, 1, 32767, 32768, 40000, 65534, 65535, 12345], dtype=np.uint16)
ULONGS = np.array([0, 2**31 - 1, 2**31, 2**32 - 1], dtype=np.uint32)


@pytest.fixture(scope="module")
def unsigned_ioc():
    with SoftIoc(DB) as ioc:
        yield ioc


@pytest.fixture
def context(unsigned_ioc):
    with Context(unsigned_ioc.env, timeout=5.0) as ctx:
        yield ctx


def first_update(context: Context, name: str, dtype: str | None):
    arrived: list[object] = []
    done = threading.Event()

    def keep(reading: object) -> None:
        arrived.append(reading)
        done.set()

    with context.subscribe(name, keep, dtype=dtype):
        assert done.wait(10), f"no update of {name}"
    return arrived[0]


@pytest.mark.parametrize("name, values, dtype", [("U:ushorts", USHORTS, "uint16"),
                                                  ("U:ulongs", ULONGS, "uint32")])
def test_unsigned_array_arrives_whole_and_unsigned(context, name, values, dtype) -> None:
    context.put(name, values)
    reading = first_update(context, name, dtype)
    assert reading.value.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(reading.value, values)
    assert reading.timestamp > 0  # the TIME form's stamp still comes with it


def test_without_dtype_the_server_widens(context) -> None:
    context.put("U:ushorts", USHORTS)
    value = first_update(context, "U:ushorts", None).value
    assert value.dtype == np.int32  # LONG: what CA makes of USHORT, twice the bytes
    np.testing.assert_array_equal(value, USHORTS.astype(np.int32))


def test_dtype_leaves_other_types_alone(context) -> None:
    context.put("U:doubles", [1.5, 2.5, 3.5, 4.5])
    with pytest.raises(ValueError, match="float64"):
        first_update(context, "U:doubles", "float64")


def test_detector_layout_reads_the_pixel_type(context) -> None:
    from pvflow.storage.detector_source import FTVL_TYPES

    assert FTVL_TYPES[context.get("U:ushorts.FTVL", as_string=True)] == "uint16"
