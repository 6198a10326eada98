"""One fuzz target per decoder: bytes in, and the only exceptions its contract allows.

A target returns normally or raises one of its ``allowed`` exceptions; anything else is a
crash (a bug: the caller of that decoder would see an error it does not expect, or the I/O
thread would). The same functions replay the kept corpus in the normal test suite.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from pvflow.ca import protocol as ca_protocol
from pvflow.ca.channel import Channel as CAChannel
from pvflow.ca.channel import ReadRequest, Subscription, WriteRequest
from pvflow.ca.circuit import Circuit as CACircuit
from pvflow.ca.dbr import DECODERS, Form, Native
from pvflow.errors import RemoteProtocolError
from pvflow.io import large_payload
from pvflow.io.delivery import Mailbox
from pvflow.ioc.detector.backends.eiger.stream import StreamError
from pvflow.ioc.detector.backends.eiger.stream import decode as decode_stream
from pvflow.ioc.sync.backends.rre.protocol import FrameDecoder
from pvflow.pva import protocol as pva_protocol
from pvflow.pva.channel import Channel as PVAChannel
from pvflow.pva.channel import ChannelState
from pvflow.pva.circuit import Circuit as PVACircuit
from pvflow.pva.operations import FULL_REQUEST, GetOperation, MonitorOperation
from pvflow.pva.pvdata import read_type_memo, read_value

LOW_LEVEL = (struct.error, IndexError, ValueError, KeyError)  # a circuit turns these into
# RemoteProtocolError around every decoder it calls


@dataclass(frozen=True)
class Target:
    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]


class _Listener:
    """What a circuit reports to its engine, dropped: the target checks the circuit alone."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None


def _chunks(data: bytes) -> tuple[int, bytes]:
    """The first byte picks the size of the reads the stream arrives in (split points)."""
    return (data[0] % 64 + 1 if data else 1), data[1:]


def _feed(circuit: CACircuit | PVACircuit, data: bytes) -> None:
    chunk, stream = _chunks(data)
    position = 0
    first_chunk, large_payload.FIRST_CHUNK = large_payload.FIRST_CHUNK, 4096  # the growth
    try:  # path with small inputs, and no 16 MiB zeroed per lying header
        while position < len(stream):
            view = circuit.receive_view()
            count = min(chunk, len(view), len(stream) - position)
            if count == 0:
                return
            view[:count] = stream[position:position + count]
            circuit.received(count)
            position += count
    finally:
        large_payload.FIRST_CHUNK = first_chunk


def ca_circuit(data: bytes) -> None:
    """A CA circuit with channels, reads of every form, a write and a subscription in flight."""
    circuit = CACircuit("127.0.0.1", 5064, _Listener(), lambda frame: None, 1 << 20)
    for cid in range(4):
        channel = CAChannel(f"F:{cid}", cid)
        channel.count = 8
        circuit.channels[cid] = channel
        form = (Form.PLAIN, Form.TIME, Form.CTRL, Form.STS)[cid]
        native = (Native.DOUBLE, Native.STRING, Native.ENUM, Native.SHORT)[cid]
        circuit.pending[cid] = ReadRequest(channel, DECODERS[form + native], cid % 2 == 0,
                                           form != Form.PLAIN, lambda value: None)
    circuit.pending[9] = WriteRequest(circuit.channels[0], 1.0, lambda value: None)
    subscription = Subscription(1, circuit.channels[1], Form.TIME, 5, True,
                                Mailbox("F:1", lambda item: None, None, lambda job: None, 10))
    subscription.decoder = DECODERS[Form.TIME + Native.DOUBLE]
    circuit.subscriptions[1] = subscription
    _feed(circuit, data)


def ca_datagram(data: bytes) -> None:
    ca_protocol.decode_datagram(data, "127.0.0.1")


def pva_circuit(data: bytes) -> None:
    """A pvAccess circuit with a GET and a monitor in flight on a created channel."""
    ids = iter(range(1, 1 << 30))
    circuit = PVACircuit("127.0.0.1", 5075, _Listener(), lambda frame: None, lambda: None,
                         lambda count: next(ids), "user", "host")
    channel = PVAChannel("F:pva", 1)
    channel.state, channel.circuit, channel.sid = ChannelState.CONNECTED, circuit, 7
    circuit.channels[1] = channel
    circuit.by_sid[7] = channel
    GetOperation(channel, FULL_REQUEST, True).request(circuit, (1, lambda value: None, False))
    monitor = MonitorOperation(2, channel, FULL_REQUEST, True,
                               Mailbox("F:pva", lambda item: None, None, lambda job: None, 10),
                               10)
    monitor.start(circuit)
    _feed(circuit, data)


def pva_datagram(data: bytes) -> None:
    pva_protocol.decode_datagram(data, "127.0.0.1")


def pvdata(data: bytes) -> None:
    """A type description then a value of that type, in either byte order."""
    order = "<" if data[:1] != b"\xff" else ">"
    ftype, offset = read_type_memo(data, 1, order, {})
    if ftype is not None:
        read_value(ftype, data, offset, order, {})


def rre_frames(data: bytes) -> None:
    chunk, stream = _chunks(data)
    decoder = FrameDecoder()
    for start in range(0, len(stream), chunk):
        decoder.receive(stream[start:start + chunk])


def eiger_stream(data: bytes) -> None:
    decode_stream(data)


TARGETS: dict[str, Target] = {
    "ca_circuit": Target(ca_circuit, (RemoteProtocolError,)),
    "ca_datagram": Target(ca_datagram, ()),
    "pva_circuit": Target(pva_circuit, (RemoteProtocolError,)),
    "pva_datagram": Target(pva_datagram, (RemoteProtocolError, *LOW_LEVEL)),
    "pvdata": Target(pvdata, (RemoteProtocolError, *LOW_LEVEL)),
    "rre_frames": Target(rre_frames, ()),
    "eiger_stream": Target(eiger_stream, (StreamError,)),
}


def check(name: str, data: bytes) -> None:
    """Run target ``name`` on ``data``; an exception outside its contract propagates."""
    target = TARGETS[name]
    try:
        target.run(data)
    except target.allowed:
        pass
