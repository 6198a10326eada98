"""The PVA circuit on a fake byte stream: handshake, GET replies at every split point, large
and segmented messages, and garbage that may only ever raise RemoteProtocolError."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pvflow.errors import RemoteProtocolError
from pvflow.pva import protocol
from pvflow.io.channels import ChannelState
from pvflow.pva.channel import Channel
from pvflow.pva.circuit import Circuit
from pvflow.pva.operations import FULL_REQUEST, GetOperation, PutOperation
from pvflow.pva.pvdata import FieldType, structure, write_bitset, write_type, write_value

from .test_pvdata import NTSCALAR_TYPE


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def circuit_ready(self, circuit) -> None:
        self.events.append(("ready",))

    def channel_created(self, circuit, channel, sid) -> None:
        self.events.append(("created", channel.name, sid))

    def channel_failed(self, circuit, channel, reason) -> None:
        self.events.append(("failed", channel.name, reason))

    def channel_lost(self, circuit, channel) -> None:
        self.events.append(("lost", channel.name))

    def search_answered(self, circuit, response) -> None:
        self.events.append(("search", response))


def server(command: int, payload: bytes, flags: int = 0x40) -> bytes:
    return protocol.HEADER.pack(0xCA, 2, flags, command, len(payload)) + payload


def make_circuit():
    listener = Listener()
    ids = iter(range(100, 10_000))
    circuit = Circuit("127.0.0.1", 5075, listener, lambda data: None, lambda: None,
                      lambda count: next(ids), "user", "host")
    return circuit, listener


def feed(circuit: Circuit, data: bytes, chunk: int) -> None:
    position = 0
    while position < len(data):
        view = circuit.receive_view()
        count = min(chunk, len(view), len(data) - position)
        view[:count] = data[position:position + count]
        circuit.received(count)
        position += count


def connected_get(circuit: Circuit, request_text: str = FULL_REQUEST):
    channel = Channel("T:ai", 1)
    channel.state, channel.circuit, channel.sid = ChannelState.CONNECTED, circuit, 7
    results: list = []
    operation = GetOperation(channel, request_text, True)
    operation.request(circuit, (1, results.append, False))
    return operation, results


def test_handshake_and_channel_creation() -> None:
    circuit, listener = make_circuit()
    circuit.channels[1] = Channel("T:ai", 1)
    stream = (protocol.HEADER.pack(0xCA, 2, 0x41, 2, 0)  # SET_BYTE_ORDER (control)
              + server(1, struct.pack("<IH", 0x10000, 0x7FFF) + b"\x02\x09anonymous\x02ca")
              + server(9, b"\xff")
              + server(7, struct.pack("<II", 1, 55) + b"\xff"))
    feed(circuit, stream, 3)
    assert listener.events == [("ready",), ("created", "T:ai", 55)]
    reply = circuit.take_output()
    assert reply[3] == 1 and b"\x02ca" in reply and b"user" in reply


def test_get_replies_at_every_split_point() -> None:
    circuit, _ = make_circuit()
    operation, results = connected_get(circuit)
    ioid = operation.ioid
    init = server(10, struct.pack("<IB", ioid, 8) + b"\xff" + NTSCALAR_TYPE)
    value = server(10, struct.pack("<IB", ioid, 0) + b"\xff" + write_bitset([1, 7, 8])
                   + struct.pack("<dqi", 2.5, 1_000_000_000, 5))
    stream = init + value
    for chunk in (1, 2, 7, 13, len(stream)):
        circuit, _ = make_circuit()
        operation, results = connected_get(circuit)
        stream = (server(10, struct.pack("<IB", operation.ioid, 8) + b"\xff" + NTSCALAR_TYPE)
                  + server(10, struct.pack("<IB", operation.ioid, 0) + b"\xff"
                           + write_bitset([1, 7, 8]) + struct.pack("<dqi", 2.5, 10**9, 5)))
        feed(circuit, stream, chunk)
        assert len(results) == 1, chunk
        assert results[0].value == 2.5 and results[0].timestamp == 10**9 + 5e-9


def test_large_image_is_handed_over_without_a_copy() -> None:
    circuit, _ = make_circuit()
    ftype = structure("", value=FieldType(0x25 | 0x08))
    operation, results = connected_get(circuit)
    pixels = np.arange(200_000, dtype="<u2")
    stream = (server(10, struct.pack("<IB", operation.ioid, 8) + b"\xff" + write_type(ftype))
              + server(10, struct.pack("<IB", operation.ioid, 0) + b"\xff" + write_bitset([0])
                       + write_value(ftype, {"value": pixels})))
    feed(circuit, stream, 65536)
    got = results[0].value
    np.testing.assert_array_equal(got, pixels)
    assert not got.flags.owndata  # a view of the message's own buffer


def test_segmented_message_is_joined() -> None:
    circuit, _ = make_circuit()
    operation, results = connected_get(circuit)
    payload = struct.pack("<IB", operation.ioid, 8) + b"\xff" + NTSCALAR_TYPE
    parts = [payload[:10], payload[10:300], payload[300:]]
    stream = (server(10, parts[0], 0x50) + server(10, parts[1], 0x70)
              + server(10, parts[2], 0x60))
    feed(circuit, stream, 5)
    assert operation.ftype is not None and operation.ftype.type_id == "epics:nt/NTScalar:1.0"


def test_reply_for_unknown_ioid_is_ignored_and_wrong_command_is_an_error() -> None:
    circuit, _ = make_circuit()
    operation, _ = connected_get(circuit)
    feed(circuit, server(10, struct.pack("<IB", 999, 0) + b"\xff\x00"), 64)
    try:
        feed(circuit, server(13, struct.pack("<IB", operation.ioid, 0) + b"\x00"), 64)
    except RemoteProtocolError as error:
        assert "127.0.0.1:5075" in str(error)
    else:
        raise AssertionError("a MONITOR reply to a GET's ioid must close the circuit")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 4, 7, 8, 9, 10, 11, 13, 17, 18, 20, 99]),
                          st.integers(0, 0xFF), st.binary(max_size=80)), max_size=6),
       st.binary(max_size=40), st.integers(1, 17))
def test_malformed_frames_only_raise_remote_protocol_errors(frames, tail, chunk) -> None:
    circuit, _ = make_circuit()
    operation, _ = connected_get(circuit)
    circuit.channels[1] = operation.channel
    stream = b"".join(server(command, struct.pack("<IB", operation.ioid, sub) + body,
                             0x40 | (sub & 0xB0))
                      for command, sub, body in frames) + tail
    try:
        feed(circuit, stream, chunk)
    except RemoteProtocolError:
        pass


def test_a_header_claiming_a_gigabyte_takes_memory_only_as_bytes_arrive() -> None:
    from pvflow.io.large_payload import FIRST_CHUNK

    circuit, _ = make_circuit()
    lie = protocol.HEADER.pack(0xCA, 2, 0x40, protocol.Command.GET, (1 << 30) - 8)
    feed(circuit, lie + b"\0" * 64, 4096)
    assert len(circuit.receive_view()) <= FIRST_CHUNK
    circuit.close(ConnectionError("gone"))
    assert len(circuit.receive_view()) == 0


def test_a_caller_takes_its_gets_answer_only_when_it_comes_first_and_whole() -> None:
    sent: list[bytes] = []
    ids = iter(range(100, 10_000))
    circuit = Circuit("127.0.0.1", 5075, Listener(), sent.append, lambda: None,
                      lambda count: next(ids), "user", "host")
    operation, results = connected_get(circuit)
    ioid = operation.ioid

    def arrive(data: bytes) -> None:  # as a reading caller receives: bytes in, nothing parsed
        view = circuit.receive_view()
        view[:len(data)] = data
        circuit.buffered(len(data))

    def value(number: float) -> bytes:
        return server(10, struct.pack("<IB", ioid, 0) + b"\xff" + write_bitset([1, 7, 8])
                      + struct.pack("<dqi", number, 10**9, 5))

    arrive(server(10, struct.pack("<IB", ioid, 8) + b"\xff" + NTSCALAR_TYPE))
    assert circuit.take_reply(ioid) is False  # the INIT's answer: the I/O thread's
    circuit.received(0)
    operation.request(circuit, (2, results.append, False))  # waits for the EXEC in flight
    mine = value(2.5)
    arrive(mine[:9])
    assert circuit.take_reply(ioid) is None  # not all of it yet
    arrive(mine[9:] + value(3.5)[:4])
    assert circuit.take_reply(ioid) is True and [r.value for r in results] == [2.5]
    assert sent and sent[-1][3] == 10  # the waiting get's EXEC left from this thread
    arrive(value(3.5)[4:] + server(10, struct.pack("<IB", 999, 0) + b"\xff\x00"))
    assert circuit.take_reply(ioid + 1) is False  # another operation's answer comes first
    assert circuit.take_reply(ioid) is True and [r.value for r in results] == [2.5, 3.5]
    assert circuit.take_reply(ioid) is False and circuit.has_buffered
    circuit.received(0)  # the I/O thread's parse of what the caller left
    assert not circuit.has_buffered
    circuit.close(RemoteProtocolError("gone"))
    assert circuit.take_reply(ioid) is False


def test_a_caller_takes_its_puts_answer_and_sends_the_next_put_itself() -> None:
    sent: list[bytes] = []
    ids = iter(range(100, 10_000))
    circuit = Circuit("127.0.0.1", 5075, Listener(), sent.append, lambda: None,
                      lambda count: next(ids), "user", "host")
    channel = Channel("T:ao", 1)
    channel.state, channel.circuit, channel.sid = ChannelState.CONNECTED, circuit, 7
    answers: list = []
    operation = channel.puts[True] = PutOperation(channel, block=True)
    operation.request(circuit, (1, 1.5, answers.append, None))  # its INIT: the type is not known
    ioid = operation.ioid
    feed(circuit, server(11, struct.pack("<IB", ioid, 8) + b"\xff" + NTSCALAR_TYPE), 4096)
    assert sent[-1][3] == 11 and len(sent) == 1  # the INIT's answer sent the first put at once
    operation.request(circuit, (2, 2.5, answers.append, operation.encode(2.5)))  # waits for it
    view = circuit.receive_view()  # as a reading caller receives: bytes in, nothing parsed
    answer = server(11, struct.pack("<IB", ioid, 0) + b"\xff")
    view[:len(answer)] = answer
    circuit.buffered(len(answer))
    assert circuit.take_reply(ioid) is True and answers == [None]
    assert len(sent) == 2 and sent[-1][3] == 11  # the waiting put left from this thread
