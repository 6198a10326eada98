"""Every native type in every form, compared field by field with caproto's client reading the
same record: two independent decoders of the same bytes must agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
from caproto import ChannelType
from caproto.threading.client import Context as CaprotoContext

from pvflow import Reading

RECORDS = {  # name -> native type as the softIoc serves it
    "T:ai": "DOUBLE", "T:long": "LONG", "T:enum": "ENUM", "T:string": "STRING",
    "T:shorts": "INT", "T:floats": "FLOAT", "T:chars": "CHAR", "T:wave": "DOUBLE",
}
FORMS = {"value": "", "sts": "STS_", "time": "TIME_", "gr": "GR_", "ctrl": "CTRL_"}


@pytest.fixture(scope="module")
def caproto_context(softioc):
    import os

    previous = {key: os.environ.get(key) for key in softioc.env}
    os.environ.update(softioc.env)
    context = CaprotoContext()
    yield context
    context.disconnect()
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _same(ours: object, theirs: object) -> bool:
    if isinstance(theirs, bytes):  # caproto gives DBR_CHAR limits as single bytes
        theirs = theirs[0] if theirs else 0
    if isinstance(ours, float) and math.isnan(ours):
        return isinstance(theirs, float) and math.isnan(theirs)
    return ours == theirs


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", RECORDS)
def test_form_matches_caproto(context, caproto_context, name: str, form: str) -> None:
    context.put("T:shorts", np.arange(5))
    context.put("T:floats", np.arange(4) / 2)
    context.put("T:chars", "text")
    context.put("T:wave", np.linspace(0, 1, 7))
    (pv,) = caproto_context.get_pvs(name, timeout=10)
    caproto_form = FORMS[form]
    if RECORDS[name] == "STRING" and form in ("gr", "ctrl"):
        # db_access.h sends DBR_GR/CTRL_STRING as dbr_sts_string; caproto expects a 12-byte
        # prefix there and reads an empty string, so compare with its STS reading instead
        caproto_form = "STS_"
    dbr = getattr(ChannelType, caproto_form + RECORDS[name])
    theirs = pv.read(data_type=dbr, timeout=10)
    ours = context.get(name, form=form)
    value = ours.value if isinstance(ours, Reading) else ours
    expected = theirs.data
    if RECORDS[name] == "STRING":
        assert value == expected[0].decode()
    elif len(expected) == 1 and not isinstance(value, np.ndarray):
        assert value == pytest.approx(expected[0])
    else:
        np.testing.assert_allclose(value, expected)
    if form == "value":
        return
    metadata = theirs.metadata
    assert (ours.status, ours.severity) == (metadata.status, metadata.severity)
    if form == "time":
        # float rounding differs (secs + nsec * 1e-9 + epoch, in another order): 10 µs is
        # far below the milliseconds between two processings of the record
        assert ours.timestamp == pytest.approx(metadata.timestamp, abs=1e-5)
    if form in ("gr", "ctrl") and RECORDS[name] not in ("STRING", "ENUM"):
        assert ours.units == metadata.units.decode()
        assert _same(ours.display_limits[1], metadata.upper_disp_limit)
        assert _same(ours.alarm_limits[0], metadata.lower_alarm_limit)
        if hasattr(metadata, "precision"):
            assert ours.precision == metadata.precision
        if form == "ctrl":
            assert _same(ours.control_limits[1], metadata.upper_ctrl_limit)
    if form in ("gr", "ctrl") and RECORDS[name] == "ENUM":
        assert ours.enum_strings == tuple(s.decode() for s in metadata.enum_strings)
