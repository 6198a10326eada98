"""The sync IOC over CA from another process: syncster's PV protocol and state machine, with
the ``sim`` backend (scripted through its test-only PVs) and the ``rre`` backend (against the
protocol-level RRE simulator on a pseudo-terminal)."""

from __future__ import annotations

import pytest

from pvflow.ioc.sync.backends.rre.registers import PidState, TrackerState
from pvflow.ioc.sync.backends.rre.sim import SimRre
from tests.ioc.clients import CaClient, wait_for_monitors
from tests.ioc.ioc_process import IocProcess, unique_prefix

TIMEOUT = 60.0


def start_ioc(**env: str) -> IocProcess:
    prefix = unique_prefix()
    process = IocProcess(["-m", "pvflow", "ioc", "sync"],
                         {"SYNCSTER_PREFIX": prefix, "SYNCSTER_POLL_PERIOD": "0.1", **env})
    process.prefix = prefix
    return process.start()


def wait_state(ca: CaClient, prefix: str, state: str) -> None:
    ca.wait_for(prefix + "state", lambda value: value == state, TIMEOUT, f"state {state}")


def test_sim_backend_walks_the_syncster_state_machine():
    ioc = start_ioc(SYNCSTER_RRE_PORT="none", SYNCSTER_SYNC_TIMEOUT="-1")
    ca = CaClient(ioc.epics_env)
    p = ioc.prefix
    try:
        wait_state(ca, p, "SYNCED")  # INIT -> SYNCED: the simulated device starts locked
        assert ca.get(p + "pid_state") == "LOCKED"
        assert ca.get(p + "tracker_state") == "ACTIVE"
        ca.put(p + "sim:locked", 0)
        wait_state(ca, p, "ERROR")
        assert ca.get(p + "error").startswith("Sync lost; flags: pid:OFF")
        ca.put(p + "clear", 0)  # syncster clears on 1 only
        assert "value=0" in ioc.wait_for_line('msg="Clear ignored"')
        assert ca.get(p + "state") == "ERROR"
        ca.put(p + "clear", 1)
        wait_state(ca, p, "OFF")
        ca.wait_for(p + "clear", lambda value: value == 0, TIMEOUT, "clear back to 0")
        ca.put(p + "stray", 1)
        wait_state(ca, p, "STRAY")
        ca.wait_for(p + "stray", lambda value: value == 0, TIMEOUT, "stray back to 0")
        ca.put(p + "sim:locked", 1)
        wait_state(ca, p, "SYNCED")
        ca.wait_for(p + "state_time", lambda value: value > 0, TIMEOUT, "time in state")
        ca.put(p + "sim:inject_error", "laser head interlock")
        wait_state(ca, p, "ERROR")
        assert ca.get(p + "error") == "laser head interlock"
    finally:
        ca.close()
        ioc.stop()


def test_stray_times_out_into_error_and_auto_stray():
    ioc = start_ioc(SYNCSTER_SYNC_TIMEOUT="0.5", SYNCSTER_AUTO_STRAY="yes")
    ca = CaClient(ioc.epics_env)
    p = ioc.prefix
    try:
        wait_state(ca, p, "SYNCED")
        ca.put(p + "sim:locked", 0)
        wait_state(ca, p, "ERROR")
        ca.put(p + "clear", 1)
        # OFF moves on to STRAY by itself, and STRAY gives up after 0.5 s
        ca.wait_for(p + "error", lambda error: "Sync timeout" in error, TIMEOUT, "sync timeout")
        wait_state(ca, p, "ERROR")  # published right after the error it is for
        assert "STRAY" in ioc.wait_for_line("new=STRAY")
    finally:
        ca.close()
        ioc.stop()


def test_bad_configuration_exits_with_one_line():
    process = IocProcess(["-m", "pvflow", "ioc", "sync"], {"SYNCSTER_AUTO_STRAY": "maybe"})
    process.start(wait=False)
    assert process.wait_exit(TIMEOUT) == 2
    assert "SYNCSTER_AUTO_STRAY='maybe'" in process.output


@pytest.fixture
def simulator():
    pytest.importorskip("serial")
    with SimRre() as rre:
        yield rre


def test_rre_backend_against_the_simulator(simulator):
    ioc = start_ioc(SYNCSTER_RRE_PORT=simulator.port, SYNCSTER_SYNC_TIMEOUT="-1")
    ca = CaClient(ioc.epics_env)
    p = ioc.prefix
    try:
        wait_state(ca, p, "SYNCED")
        assert ca.get(p + "pid_state") == "LOCKED"
        simulator.set_tracker_state(TrackerState.CORR_INC)
        ca.wait_for(p + "tracker_state", lambda value: value == "CORR_INC", TIMEOUT, "tracker")
        simulator.set_pid_state(PidState.RELOCK)
        wait_state(ca, p, "ERROR")
        assert "Sync lost; flags: pid:RELOCK" in ca.text(p + "error_text")
        simulator.set_pid_state(PidState.LOCKED)
        ca.put(p + "clear", 1)
        wait_state(ca, p, "OFF")
        ca.put(p + "stray", 1)
        wait_state(ca, p, "SYNCED")

        # serial trouble becomes ERROR with the reason
        simulator.set_silent(True)
        wait_state(ca, p, "ERROR")
        assert "no answer" in ca.text(p + "error_text")
        simulator.set_silent(False)
        simulator.nack_next_requests(1000)
        ca.put(p + "clear", 1)
        ca.wait_for(p + "error_text", lambda text: "NACK" in text, TIMEOUT, "NACK error",
                    text=True)
        simulator.clear_faults()

        simulator.disconnect()
        ca.put(p + "clear", 1)
        wait_for_monitors({"error_text": ca.monitor(p + "error_text", text=True),
                           "state": ca.monitor(p + "state")},
                          lambda latest: simulator.port in latest["error_text"]
                          and latest["state"] == "ERROR", TIMEOUT, "disconnect error")
        simulator.reconnect()  # a new pty behind the same path: the IOC reopens it
        ca.put(p + "clear", 1)
        wait_state(ca, p, "OFF")
        ca.put(p + "stray", 1)
        wait_state(ca, p, "SYNCED")
    finally:
        ca.close()
        ioc.stop()
