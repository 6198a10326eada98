"""ophyd (v1) signals on ``pva://`` names through the pvflow control layer, against qsrv."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import standard_db
from tests.servers import SoftIoc


@pytest.fixture(scope="module")
def pva_ioc():
    ioc = SoftIoc(standard_db("V:"), pva=True)
    ioc.start()
    yield ioc
    ioc.close()


@pytest.fixture(scope="module")
def layer(pva_ioc, install_pvflow):
    yield from install_pvflow(pva_ioc.env)


def test_signal_reads_describes_and_puts_over_pva(layer):
    from ophyd import EpicsSignal, EpicsSignalRO

    readback = EpicsSignalRO("pva://V:ai", name="readback")
    readback.wait_for_connection(timeout=10)
    assert readback.get() == 1.5
    description = readback.describe()["readback"]
    assert (description["units"], description["precision"]) == ("mm", 3)

    setpoint = EpicsSignal("pva://V:ao", name="setpoint")
    setpoint.wait_for_connection(timeout=10)
    setpoint.put(7.25, wait=True)
    assert setpoint.get(use_monitor=False) == 7.25  # a fresh read, not the value just put
    assert layer.caget("pva://V:ao") == 7.25


def test_monitor_and_string_enum_over_pva(layer):
    from ophyd import EpicsSignal

    signal = EpicsSignal("pva://V:long", name="long", auto_monitor=True)
    signal.wait_for_connection(timeout=10)
    seen: list[int] = []
    arrived = threading.Event()

    def on_value(value, **kwargs):
        seen.append(value)
        if value == 45:
            arrived.set()

    token = signal.subscribe(on_value)
    for value in (43, 44, 45):
        layer.caput("pva://V:long", value, wait=True)
    assert arrived.wait(10), seen
    signal.unsubscribe(token)
    assert seen[-3:] == [43, 44, 45]

    choice = EpicsSignal("pva://V:enum", name="choice", string=True)
    choice.wait_for_connection(timeout=10)
    choice.put("two", wait=True)
    assert choice.get(use_monitor=False) == "two"
    assert choice.metadata["enum_strs"] == ("zero", "one", "two")
