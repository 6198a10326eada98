"""PVA monitor flow control (``pipeline=true``): the window we grant, when we acknowledge, and
a burst the server must deliver whole while this process is not reading."""

from __future__ import annotations

import struct
import threading

import pytest

from pvflow import Context
from pvflow.io.delivery import Mailbox
from pvflow.io.loop import shared_loop
from pvflow.pva import protocol
from pvflow.io.channels import ChannelState
from pvflow.pva.channel import Channel
from pvflow.pva.operations import FULL_REQUEST, MonitorOperation
from pvflow.pva.protocol import Command, Sub
from pvflow.pva.pvdata import write_bitset
from tests.servers import SoftIoc

from .test_circuit import feed, make_circuit, server
from .test_pvdata import NTSCALAR_TYPE

CLIENT_QUEUE = 500


def started_monitor(circuit):
    """A monitor on a connected channel (sid 7); its mailbox keeps what it is posted."""
    channel = Channel("T:ai", 1)
    channel.state, channel.circuit, channel.sid = ChannelState.CONNECTED, circuit, 7
    mailbox = Mailbox("T:ai", lambda update: None, None, lambda box: None, CLIENT_QUEUE)
    operation = MonitorOperation(1, channel, FULL_REQUEST, False, mailbox, 100)
    return operation, operation.start(circuit)


def update(ioid: int, value: float) -> bytes:
    """A MONITOR update as pvxs sends it: changed bitset, value, empty overrun bitset."""
    return server(Command.MONITOR, struct.pack("<IB", ioid, 0) + write_bitset([1])
                  + struct.pack("<d", value) + b"\x00")


def acks(output: bytes) -> list[int]:
    """The counts of the MONITOR acknowledgements in ``output`` (a run of client frames)."""
    counts, offset = [], 0
    while offset < len(output):
        _, _, _, command, size = protocol.HEADER.unpack_from(output, offset)
        payload = output[offset + 8:offset + 8 + size]
        if command == Command.MONITOR and payload[8] == Sub.PIPELINE:
            counts.append(struct.unpack_from("<I", payload, 9)[0])
        offset += 8 + size
    return counts


def test_window_is_the_client_queue_and_the_request_pipelines() -> None:
    circuit, _ = make_circuit()
    _, init = started_monitor(circuit)
    assert init[8 + 8] == Sub.INIT | Sub.PIPELINE
    assert struct.unpack("<I", init[-4:])[0] == CLIENT_QUEUE
    assert b"queueSize" in init and b"pipeline" in init and b"true" in init


def test_every_read_pass_acknowledges_what_it_took() -> None:
    circuit, _ = make_circuit()
    operation, _ = started_monitor(circuit)
    ioid = operation.ioid
    initialised = server(Command.MONITOR, struct.pack("<IB", ioid, Sub.INIT) + b"\xff"
                         + NTSCALAR_TYPE)
    feed(circuit, initialised + b"".join(update(ioid, value) for value in (1, 2, 3)), 1 << 16)
    assert acks(circuit.take_output()) == [3]
    feed(circuit, update(ioid, 4.0), 1 << 16)
    assert acks(circuit.take_output()) == [1]
    assert [item for item in operation.mailbox._queue if isinstance(item, float)] == [1, 2, 3, 4]


@pytest.fixture(scope="module")
def flood_ioc():
    ioc = SoftIoc('record(longout, "F:count") { field(VAL, "0") field(PINI, "YES") }\n',
                  pva=True)
    ioc.start()
    yield ioc
    ioc.close()


def test_burst_larger_than_the_server_queue_arrives_whole(flood_ioc) -> None:
    """250 updates (more than queueSize=100 plus that many in flight) posted while our I/O
    thread reads nothing, as in a busy process: all of them arrive, in order."""
    p4p_client = pytest.importorskip("p4p.client.thread")
    burst = 250
    seen: list[int] = []
    initial, complete, observed = threading.Event(), threading.Event(), threading.Event()
    reading_stopped, resume = threading.Event(), threading.Event()

    def on_update(value: int) -> None:
        seen.append(value)
        (complete if value == burst else initial).set()

    def stop_reading() -> None:
        reading_stopped.set()
        resume.wait(30)

    with Context(flood_ioc.env, timeout=5.0) as context, \
            p4p_client.Context("pva", conf=flood_ioc.env, useenv=False) as observer:
        observer.put("F:count", 0)
        subscription = context.subscribe("pva://F:count", on_update, form="value")
        assert initial.wait(10)
        watch = observer.monitor("F:count", lambda value: value == burst and observed.set())
        shared_loop().call_soon(stop_reading)
        try:
            assert reading_stopped.wait(10)
            for value in range(1, burst + 1):
                observer.put("F:count", value)
            assert observed.wait(10)  # the server has posted the whole burst
        finally:
            resume.set()
            watch.close()
        assert complete.wait(10)
        subscription.close()
    assert seen[seen.index(1):] == list(range(1, burst + 1))
    assert subscription.dropped == 0
