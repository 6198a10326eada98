"""The serial RRE client against the protocol-level simulator on a pseudo-terminal.

Frames cross a real pty (pyserial on the slave side), so line settings and partial reads are
exercised as with a USB serial adapter.
"""

from __future__ import annotations

import pytest

from pvflow.ioc.sync.backends.rre.client import (RreClient, RreDisconnectedError, RreNackError,
                                        RreProtocolError, RreTimeoutError)
from pvflow.ioc.sync.backends.rre.protocol import Command, Message, NackReason
from pvflow.ioc.sync.backends.rre.registers import (PID_STATUS_PATH, TRACKER_STATE_PATH, PidState,
                                           TrackerState)
from pvflow.ioc.sync.backends.rre.sim import SimRre

pytest.importorskip("serial")


@pytest.fixture
def simulator():
    with SimRre() as rre:
        yield rre


@pytest.fixture
def client(simulator):
    rre_client = RreClient(simulator.port, timeout=2.0)
    yield rre_client
    rre_client.close()


def test_introspection_and_state_registers(simulator, client):
    assert client.read_path(("DEV", "ID")) == "SIM-RRE-0001"
    assert client.read_path(("DEV", "VerFW")) == (7, 3, 4, 1)
    assert client.read_path(PID_STATUS_PATH) == PidState.LOCKED
    assert client.read_path(TRACKER_STATE_PATH) == TrackerState.ACTIVE
    simulator.set_pid_state(PidState.RELOCK)
    simulator.set_tracker_state(TrackerState.DORMANT)
    assert client.read_path(PID_STATUS_PATH) == PidState.RELOCK
    assert client.read_path(TRACKER_STATE_PATH) == TrackerState.DORMANT
    with pytest.raises(RreProtocolError, match="no entry 'Nope' in LOCKBOX"):
        client.resolve(("LOCKBOX", "Nope"))


def test_echo(client):
    answer = client.request(Message(0xFF, 0xFF, Command.ECHO, b"hello"))
    assert answer.command == Command.REPLY and answer.payload == b"hello"


def test_crc_errors_are_retried(simulator, client):
    client.read_path(PID_STATUS_PATH)  # resolve the path first
    simulator.crc_error_next_requests(2)
    assert client.read_path(PID_STATUS_PATH) == PidState.LOCKED
    simulator.crc_error_next_requests(10)
    with pytest.raises(RreProtocolError, match="CRCERR 6 times"):
        client.read_path(PID_STATUS_PATH)


def test_corrupt_answers_time_out_with_the_reason(simulator, client):
    client.read_path(PID_STATUS_PATH)
    simulator.corrupt_next_answers(1)
    with pytest.raises(RreTimeoutError, match="CRC mismatch"):
        client.read_path(PID_STATUS_PATH)
    assert client.corrupt_frames == 1
    assert client.read_path(PID_STATUS_PATH) == PidState.LOCKED  # the stream recovered


def test_nack_names_the_reason(simulator, client):
    simulator.nack_next_requests(1, NackReason.AUTHORIZATION_REQUIRED)
    with pytest.raises(RreNackError, match="AUTHORIZATION_REQUIRED"):
        client.read_path(PID_STATUS_PATH)


def test_silence_times_out(simulator, client):
    client.read_path(PID_STATUS_PATH)
    simulator.set_silent(True)
    with pytest.raises(RreTimeoutError, match=f"{simulator.port}: no answer"):
        client.read_path(PID_STATUS_PATH)


def test_disconnect_and_reconnect(simulator, client):
    client.read_path(PID_STATUS_PATH)
    simulator.disconnect()
    with pytest.raises((RreDisconnectedError, RreTimeoutError)):
        client.read_path(PID_STATUS_PATH)
    client.close()
    simulator.reconnect()
    assert client.read_path(PID_STATUS_PATH) == PidState.LOCKED


def test_missing_port_is_a_disconnect(tmp_path):
    rre_client = RreClient(str(tmp_path / "ttyNothing"), timeout=0.5)
    with pytest.raises(RreDisconnectedError, match="cannot open"):
        rre_client.read_path(PID_STATUS_PATH)
