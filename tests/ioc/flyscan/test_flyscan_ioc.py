"""The fly-scan controller IOC driven over CA (caproto) and PVA (p4p) from other processes.

Busy-record semantics, waveform fields after and during a scan, abort, settings validation.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from pvflow.ioc.flyscan.sim import ScanSettings, SignalShape, positions, signal
from tests.ioc.clients import CaClient, Collector, patched_environ, pva_context
from tests.ioc.ioc_process import IocProcess, unique_prefix

NELM = 64
CA_STRING, CA_ENUM, CA_CHAR, CA_DOUBLE = 0, 3, 4, 6
CTRL_ENUM = 31


@pytest.fixture(scope="module")
def ioc():
    prefix = unique_prefix()
    with IocProcess(["-m", "pvflow", "ioc", "flyscan"],
                    {"FLYSCAN_PREFIX": prefix, "FLYSCAN_NELM": str(NELM)}) as process:
        process.prefix = prefix
        yield process


def channel(ca: CaClient, ioc: IocProcess, name: str) -> Any:
    """A connected caproto PV, for what CaClient does not offer (put with a callback)."""
    with patched_environ(ioc.epics_env):
        (pv,) = ca.context.get_pvs(ioc.prefix + name, timeout=10)
        pv.wait_for_connection(timeout=20)
    return pv


def configure(ca: CaClient, ioc: IocProcess, **settings: Any) -> None:
    for name, value in settings.items():
        if name == "shape":
            value = list(SignalShape).index(value)
        ca.put(ioc.prefix + "fly:" + name, value)


def put_busy(ca: CaClient, ioc: IocProcess) -> threading.Event:
    """Put "Busy" with a put-callback; the returned event is set when the callback arrives."""
    finished = threading.Event()
    channel(ca, ioc, "mybusy").write(b"Busy", wait=False, data_type=CA_STRING,
                                     callback=lambda response: finished.set())
    return finished


def test_record_types_and_fields(ca, ioc):
    p = ioc.prefix
    busy = ca.read(p + "mybusy", data_type=CTRL_ENUM)
    assert list(busy.metadata.enum_strings) == [b"Done", b"Busy"]
    assert ca.read(p + "mybusy", data_type=CA_STRING).data == [b"Done"]
    assert ca.get(p + "mybusy.FLNK") == p + "fly:on_busy"
    assert ca.get(p + "fly:on_busy.OUT").startswith(p + "fly:run PP")
    ca.read(p + "mybusy.OUT")  # readable, as BusyRecord.output_link needs
    for name in ("t_array", "x_array", "y_array"):
        assert ca.read(p + name).data_type == CA_DOUBLE
        assert ca.get(p + name + ".NELM") == NELM
        assert ca.read(p + name + ".FTVL", data_type=CA_STRING).data == [b"DOUBLE"]
    assert ca.read(p + "str_wave.FTVL", data_type=CA_STRING).data == [b"CHAR"]
    assert ca.get(p + "str_wave.NELM") == 256


def test_put_callback_completes_after_the_scan_with_the_arrays_filled(ca, ioc):
    p = ioc.prefix
    configure(ca, ioc, points=40, period=0.01, start=1.0, end=3.0, shape=SignalShape.LINEAR,
              center=2.0, width=0.5, amplitude=2.0, background=1.0, noise=0.0)
    busy_values = Collector()
    nord_values = Collector()
    busy_sub = ca.subscribe(p + "mybusy", lambda r: busy_values.append(r.data[0]))
    nord_sub = ca.subscribe(p + "x_array.NORD", lambda r: nord_values.append(float(r.data[0])))
    try:
        finished = put_busy(ca, ioc)
        assert finished.wait(60), "the put-callback of Busy never completed"
        # when the callback arrives the record is Done and the arrays are complete
        assert ca.read(p + "mybusy", data_type=CA_STRING).data == [b"Done"]
        for name in ("t_array", "x_array", "y_array"):
            assert ca.get(p + name + ".NORD") == 40
        settings = ScanSettings(points=40, period=0.01, start=1.0, end=3.0,
                                shape=SignalShape.LINEAR, center=2.0, width=0.5,
                                amplitude=2.0, background=1.0)
        x = ca.read(p + "x_array").data
        y = ca.read(p + "y_array").data
        t = ca.read(p + "t_array").data
        assert list(x) == pytest.approx(list(positions(settings)))
        assert list(y) == pytest.approx([signal(settings, value) for value in x])
        assert np.all(np.diff(t) > 0)
        assert "done: 40 points" in ca.text(p + "str_wave")
        # monitors saw Busy, then Done; NORD grew point by point during the scan
        seen_busy = busy_values.wait_for(lambda seen: len(seen) >= 3,
                                         what="three mybusy monitor updates")
        assert seen_busy[-2:] == [1, 0]
        seen_nord = nord_values.wait_for(lambda seen: 40.0 in seen, what="NORD 40 monitor")
        last_empty = len(seen_nord) - 1 - seen_nord[::-1].index(0.0)  # the scan's start
        grown = seen_nord[last_empty:]
        assert grown[-1] == 40.0
        assert len(set(grown)) > 3, f"NORD did not grow in steps: {grown}"
        assert grown == sorted(grown)
    finally:
        busy_sub.clear()
        nord_sub.clear()


def test_done_during_a_scan_aborts_it_cleanly(ca, ioc):
    p = ioc.prefix
    configure(ca, ioc, points=NELM, period=0.05, shape=SignalShape.GAUSSIAN)
    finished = put_busy(ca, ioc)
    # the scan empties the arrays, then says so: only then is NORD this scan's
    ca.wait_for(p + "str_wave", lambda text: text.startswith("scanning"), what="scan start",
                text=True)
    ca.wait_for(p + "t_array.NORD", lambda nord: nord >= 3, what="three points")
    # a plain put, as caput and ophyd-async's stop_busy_record do: EPICS queues a second
    # put-callback to a record behind the one in progress (the Busy put), busy record or not
    channel(ca, ioc, "mybusy").write([0], wait=False)
    assert finished.wait(60), "the put-callback of Busy never completed after the abort"
    taken = ca.get(p + "t_array.NORD")
    assert 3 <= taken < NELM
    assert "aborted after" in ca.text(p + "str_wave")
    assert ca.read(p + "mybusy", data_type=CA_STRING).data == [b"Done"]
    # the controller is ready for the next scan, which runs to the end
    configure(ca, ioc, points=5, period=0.01)
    assert put_busy(ca, ioc).wait(60)
    assert ca.get(p + "t_array.NORD") == 5


def test_bad_settings_are_rejected_with_a_log_line(ca, ioc):
    p = ioc.prefix
    configure(ca, ioc, points=10)
    ca.put(p + "fly:points", NELM + 1)
    assert ca.get(p + "fly:points") == 10
    line = ioc.wait_for_line('msg="rejected setting"')
    assert f"pv={p}fly:points" in line and f"value={NELM + 1}" in line and "NELM" in line
    ca.put(p + "fly:period", 0.0)
    assert ca.get(p + "fly:period") > 0
    ca.put(p + "fly:width", -1.0)
    assert ca.get(p + "fly:width") > 0


def test_scan_over_pva_with_a_blocking_put(ca, ioc):
    p = ioc.prefix
    configure(ca, ioc, points=8, period=0.01, start=0.0, end=7.0)
    context = pva_context(ioc.epics_env)
    try:
        context.put(p + "mybusy", "Busy", request="record[block=true]", timeout=60)
        assert str(context.get(p + "mybusy")) == "Done"
        x = context.get(p + "x_array")
        assert list(np.asarray(x)) == pytest.approx([float(i) for i in range(8)])
    finally:
        context.close()



@pytest.mark.parametrize("field", ["mybusy.FLNK", "mybusy.OUT", "mybusy.SCAN", "fly:run.PROC",
                                   "fly:on_busy.OUT", "fly:points.DRVH"])
def test_links_and_fields_a_client_must_not_change_are_read_only(ca, ioc, field):
    from pvflow import AccessDeniedError, Context

    p = ioc.prefix
    with Context(ioc.epics_env) as ctx:
        before = ctx.get(p + field)
        with pytest.raises(AccessDeniedError, match=field):
            ctx.put(p + field, "X" if field.endswith(("FLNK", "OUT")) else 1)
        assert ctx.get(p + field) == before
        ctx.put(p + "fly:points", 10)  # the values themselves stay writable
        assert ctx.get(p + "fly:points") == 10
