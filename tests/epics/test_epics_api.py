"""pvflow.epics beyond what pyepics' own suite covers: pvAccess names, mixed bulk reads,
errors under pyepics' names, the ``epics`` alias. Against the C softIoc (CA + PVA)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from pvflow import Context
from tests.conftest import standard_db
from tests.servers import SoftIoc

WAIT = 10.0
ACCESS = "ASG(DEFAULT) { RULE(1, READ) RULE(1, WRITE) }\nASG(NOREAD) { RULE(1, NONE) }"


@pytest.fixture(scope="module")
def ioc():
    server = SoftIoc(standard_db("E:") + 'record(ai, "E:secret") { field(ASG, "NOREAD") }',
                     pva=True, access_security=ACCESS)
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def epics(ioc):
    import pvflow.epics as epics

    context = Context(ioc.env, timeout=5.0)
    epics.use_context(context)
    yield epics
    epics.use_context(None)
    context.close()


@pytest.mark.parametrize("scheme", ["", "pva://"])
def test_pv_callbacks_carry_pyepics_keywords(epics, ioc, scheme):
    seen: list[dict] = []
    arrived = threading.Event()

    def on_change(**keywords):
        seen.append(keywords)
        if keywords["value"] == 7.25:
            arrived.set()

    pv = epics.PV(f"{scheme}E:ao", callback=on_change)
    assert pv.wait_for_connection(WAIT)
    assert pv.put(7.25, wait=True) == 1
    assert arrived.wait(WAIT)
    last = seen[-1]
    assert last["pvname"] == f"{scheme}E:ao"
    assert last["severity"] == 0 and last["status"] == 0 and last["timestamp"] > 0
    assert last["char_value"].startswith("7.25")
    assert last["cb_info"][1] is pv
    pv.disconnect()


def test_monitored_pvs_are_ready_with_their_first_values(epics):
    """After ``wait_for_connection`` a monitored PV has its monitor's first value: a get
    with no time for a read of its own answers from it (it would be None otherwise)."""
    epics.caput("E:ao", 2.5, wait=True)
    names = ["E:long", "E:ao", "E:string", "E:secret"]
    pvs = [epics.PV(name) for name in names]
    assert all(pv.wait_for_connection(WAIT) for pv in pvs)  # E:secret: without a value
    assert [pv.get(timeout=0) for pv in pvs[:3]] == [42, 2.5, "hello"]
    with pytest.raises(epics.ChannelAccessGetFailure, match="E:secret"):
        pvs[3].get()
    for pv in pvs:
        pv.disconnect()


def test_pva_array_and_metadata(epics):
    epics.caput("E:shorts", [1, 2, 3], wait=True)
    pv = epics.get_pv("pva://E:shorts", connect=True)
    value = pv.get(use_monitor=False)
    assert isinstance(value, np.ndarray) and list(value[:3]) == [1, 2, 3]
    controls = epics.PV("pva://E:ai").get_ctrlvars()
    assert controls["units"] == "mm" and controls["precision"] == 3


def test_caget_many_mixes_protocols_and_reports_missing(epics):
    values = epics.caget_many(["E:long", "pva://E:string", "E:no-such-record"],
                              connection_timeout=0.5)
    assert values == [42, "hello", None]


def test_enum_text_and_ca_functions(epics):
    assert epics.caget("E:enum", as_string=True) == "zero"
    chid = epics.ca.create_channel("E:enum", connect=True)
    assert epics.ca.field_type(chid) == epics.dbr.ENUM
    assert epics.ca.put(chid, "two", wait=True) == 1
    assert epics.ca.get(chid) == 2
    assert epics.ca.get(chid, as_string=True) == "two"
    assert epics.ca.element_count(epics.get_pv("E:enum").chid) == 1


def test_unconvertible_put_raises_pyepics_exception_naming_the_pv(epics):
    pv = epics.get_pv("E:long", connect=True)
    with pytest.raises(epics.ca.ChannelAccessException, match="E:long"):
        pv.put("not a number")


def test_use_as_epics_gives_pvflow_to_import_epics(ioc):
    code = ("import pvflow.epics as p; p.use_as_epics(); import epics, epics.ca; "
            "from epics.devices import ao; "
            "assert epics is p and epics.ca is p.ca; print(epics.caget('E:long'))")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **ioc.env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_refused_read_raises_get_failure_naming_the_pv(epics):
    pv = epics.PV("E:secret", auto_monitor=False)
    assert pv.wait_for_connection(WAIT)
    with pytest.raises(epics.ChannelAccessGetFailure, match="E:secret"):
        pv.get()


def _read_in_child(env, results):
    import pvflow.epics as epics

    epics.use_context(Context(env, timeout=5.0))  # the parent's Context stays the parent's
    pv = epics.PV("E:long")  # connection and value arrive on the callback workers
    results.put(pv.get(timeout=5.0) if pv.wait_for_connection(5.0) else "not connected")


def test_forked_child_gets_callback_workers_of_its_own(epics, ioc):
    import multiprocessing

    assert epics.PV("E:long").get() == 42  # the parent's workers are running before the fork
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    child = epics.CAProcess(target=_read_in_child, args=(ioc.env, results))
    child.start()
    try:
        assert results.get(timeout=30) == 42
    finally:
        child.join(30)
