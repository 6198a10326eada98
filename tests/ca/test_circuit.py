"""The circuit on a fake stream: no sockets, bytes in, requests completed, errors raised."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvflow.ca import protocol
from pvflow.ca.channel import Channel, ReadRequest, WriteRequest
from pvflow.ca.circuit import LARGE_PAYLOAD, Circuit
from pvflow.io.large_payload import FIRST_CHUNK
from pvflow.ca.dbr import Form, Native, decoder
from pvflow.errors import AccessDeniedError, DisconnectedError, PutError, RemoteProtocolError


class Recorder:
    """A listener that records what the circuit reports."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def channels_created(self, circuit, channels):
        self.events.extend(("created", channel.name, int(channel.native), channel.count,
                            channel.sid) for channel in channels)

    def channel_failed(self, circuit, channel, reason):
        self.events.append(("failed", channel.name, reason))

    def channel_lost(self, circuit, channel):
        self.events.append(("lost", channel.name))

    def access_changed(self, circuit, channel):
        self.events.append(("access", channel.name, channel.access))

    def search_answered(self, circuit, response):
        self.events.append(("search", response))


def feed(circuit: Circuit, data: bytes, chunk: int) -> None:
    """Deliver ``data`` as recv_into would: at most ``chunk`` bytes and never past the view."""
    position = 0
    while position < len(data):
        view = circuit.receive_view()
        piece = data[position:position + min(chunk, len(view))]
        view[:len(piece)] = piece
        circuit.received(len(piece))
        position += len(piece)


def make_circuit(max_payload: int = 1 << 24) -> tuple[Circuit, Recorder, list[bytes]]:
    recorder = Recorder()
    sent: list[bytes] = []
    return Circuit("127.0.0.1", 5064, recorder, sent.append, max_payload), recorder, sent


def read_reply(ioid: int, value: float, status: int = 1) -> bytes:
    return protocol.header(Command.READ_NOTIFY, 8, 6, 1, status, ioid) + struct.pack(">d", value)


Command = protocol.Command


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 16, 23, 24, 25, 100, 4096])
def test_every_split_point_completes_every_request(chunk: int) -> None:
    circuit, recorder, _ = make_circuit()
    channel = Channel("T:ai", 1)
    results: list[float] = []
    for ioid in range(50):
        circuit.pending[ioid] = ReadRequest(channel, decoder(Native.DOUBLE), False, False,
                                            results.append)
    stream = b"".join(read_reply(ioid, ioid * 1.5) for ioid in range(50))
    feed(circuit, stream, chunk)
    assert results == [ioid * 1.5 for ioid in range(50)]
    assert not circuit.pending


def test_connection_sequence_reports_channel() -> None:
    circuit, recorder, _ = make_circuit()
    channel = Channel("T:ai", 9)
    circuit.channels[9] = channel
    stream = (protocol.header(Command.VERSION, 0, 0, 13, 0, 0)
              + protocol.header(Command.ACCESS_RIGHTS, 0, 0, 0, 9, 3)
              + protocol.header(Command.CREATE_CHAN, 0, Native.DOUBLE, 1, 9, 77))
    feed(circuit, stream, 5)
    assert circuit.server_version == 13 and channel.access == 3
    assert recorder.events == [("created", "T:ai", 6, 1, 77)]


def test_creates_of_one_pass_come_as_one_batch_and_before_what_follows_them() -> None:
    circuit, recorder, _ = make_circuit()
    for cid in (1, 2, 3):
        circuit.channels[cid] = Channel(f"T:{cid}", cid)
    circuit.channels[2].watchers = (object(),)  # somebody watches T:2: its rights are news
    stream = b"".join(protocol.header(Command.ACCESS_RIGHTS, 0, 0, 0, cid, 1)
                      + protocol.header(Command.CREATE_CHAN, 0, Native.DOUBLE, 1, cid, 10 + cid)
                      for cid in (1, 2))
    stream += protocol.header(Command.SERVER_DISCONN, 0, 0, 0, 2, 0)
    stream += protocol.header(Command.CREATE_CHAN, 0, Native.DOUBLE, 1, 3, 13)
    feed(circuit, stream, len(stream))
    assert recorder.events == [("access", "T:2", 1), ("created", "T:1", 6, 1, 11),
                               ("created", "T:2", 6, 1, 12), ("lost", "T:2"),
                               ("created", "T:3", 6, 1, 13)]


def test_large_payload_is_handed_over_without_copy_and_in_native_order() -> None:
    circuit, _, _ = make_circuit()
    channel = Channel("T:big", 1)
    channel.count = 100_000
    values = np.arange(100_000, dtype=">f8")
    assert values.nbytes >= LARGE_PAYLOAD
    results: list[np.ndarray] = []
    circuit.pending[4] = ReadRequest(channel, decoder(Form.TIME + Native.DOUBLE), True, False,
                                     results.append)
    prefix = b"\0" * 16  # TIME_DOUBLE metadata
    payload = prefix + values.tobytes()
    stream = protocol.header(Command.READ_NOTIFY, len(payload), 20, 100_000, 1, 4) + payload
    feed(circuit, stream + read_reply(5, 1.0), 65_000)
    (array,) = results
    assert array.dtype == np.float64 and array.dtype.isnative
    np.testing.assert_array_equal(array, np.arange(100_000, dtype=float))
    assert array.base is not None  # a view on the payload buffer, not a copy



def test_a_payload_buffer_is_reused_only_once_its_array_is_gone() -> None:
    """Images of one size reuse their buffers, but never under an array a consumer holds."""
    circuit, _, _ = make_circuit()
    channel = Channel("T:big", 1)
    channel.count = 100_000
    results: list[np.ndarray] = []

    def read(ioid: int, first: float) -> np.ndarray:
        circuit.pending[ioid] = ReadRequest(channel, decoder(Native.DOUBLE), True, False,
                                            results.append)
        values = np.arange(first, first + 100_000, dtype=">f8").tobytes()
        feed(circuit, protocol.header(Command.READ_NOTIFY, len(values), 6, 100_000, 1, ioid)
             + values, 65_000)
        return results.pop()

    held = [read(ioid, 1000.0 * ioid) for ioid in range(1, 4)]  # three images, all held
    addresses = {array.__array_interface__["data"][0] for array in held}
    assert len(addresses) == 3
    again = read(4, 4000.0)
    assert again.__array_interface__["data"][0] not in addresses
    # nothing was written under the held arrays
    assert [(a[0], a[-1]) for a in held] == [(1000.0 * i, 1000.0 * i + 99_999) for i in (1, 2, 3)]
    freed = held.pop().__array_interface__["data"][0]
    last = read(5, 5000.0)
    assert last.__array_interface__["data"][0] == freed  # the one let go is filled again
    assert last[0] == 5000.0 and again[0] == 4000.0

@pytest.mark.parametrize("chunk", [7, 1000, 5000])
def test_oversized_payload_fails_its_request_and_keeps_the_circuit(chunk: int) -> None:
    circuit, _, _ = make_circuit(max_payload=1000)
    channel = Channel("T:big", 1)
    channel.count = 250
    results: list[object] = []
    for ioid in (1, 2):
        circuit.pending[ioid] = ReadRequest(channel, decoder(Native.DOUBLE), True, False,
                                            results.append)
    big = protocol.header(Command.READ_NOTIFY, 2000, 6, 250, 1, 1) + b"\x7f" * 2000
    small = protocol.header(Command.READ_NOTIFY, 16, 6, 2, 1, 2) + struct.pack(">2d", 1, 2)
    feed(circuit, big + small, chunk)
    error, values = results
    assert "T:big" in str(error) and "EPICS_CA_MAX_ARRAY_BYTES" in str(error)
    assert values.tolist() == [1.0, 2.0]  # the next message still parses


def test_unusable_payload_fails_its_request_and_keeps_the_circuit() -> None:
    circuit, _, _ = make_circuit()
    channel = Channel("T:x", 1)
    channel.count = 100
    results: list[object] = []
    circuit.pending[3] = ReadRequest(channel, decoder(Form.TIME + Native.DOUBLE), True, True,
                                     results.append)
    circuit.pending[4] = ReadRequest(channel, decoder(Native.DOUBLE), False, False,
                                     results.append)
    short = protocol.header(Command.READ_NOTIFY, 24, 20, 100, 1, 3) + b"\0" * 24
    feed(circuit, short + read_reply(4, 2.5), 100)
    error, value = results
    assert isinstance(error, RemoteProtocolError) and "T:x" in str(error)
    assert value == 2.5 and not circuit.closed


def test_bad_native_type_fails_that_channel_and_keeps_the_circuit() -> None:
    circuit, recorder, _ = make_circuit()
    circuit.channels[1] = Channel("T:x", 1)
    circuit.channels[2] = Channel("T:y", 2)
    feed(circuit, protocol.header(Command.CREATE_CHAN, 0, 999, 1, 1, 7)
         + protocol.header(Command.CREATE_CHAN, 0, 6, 1, 2, 8), 16)
    (failed, name, reason), created = recorder.events
    assert (failed, name) == ("failed", "T:x") and "native type 999" in reason
    assert created == ("created", "T:y", 6, 1, 8) and not circuit.closed


def test_unknown_command_is_a_protocol_error_not_a_payload_to_skip() -> None:
    circuit, _, _ = make_circuit()
    with pytest.raises(RemoteProtocolError, match="command 2000"):
        feed(circuit, protocol.header(2000, 48_000, 0, 0, 0, 0) + b"\0" * 200, 64)


def test_a_header_claiming_a_gigabyte_takes_memory_only_as_bytes_arrive() -> None:
    circuit, _, _ = make_circuit(max_payload=1 << 31)
    channel = Channel("T:huge", 1)
    circuit.pending[1] = ReadRequest(channel, decoder(Native.DOUBLE), True, False,
                                     lambda value: None)
    size = (1 << 30) - 8
    feed(circuit, protocol.header(Command.READ_NOTIFY, size, 6, size // 8, 1, 1) + b"\0" * 64,
         4096)
    assert len(circuit.receive_view()) <= FIRST_CHUNK
    circuit.close(ConnectionError("gone"))
    assert len(circuit.receive_view()) == 0


def test_a_large_payload_beyond_the_first_chunk_arrives_whole(monkeypatch) -> None:
    monkeypatch.setattr("pvflow.io.large_payload.FIRST_CHUNK", 100_000)
    circuit, _, _ = make_circuit()
    channel = Channel("T:big", 1)
    channel.count = 500_000
    values = np.arange(500_000, dtype=">f8")
    results: list[np.ndarray] = []
    circuit.pending[4] = ReadRequest(channel, decoder(Native.DOUBLE), True, False,
                                     results.append)
    stream = protocol.header(Command.READ_NOTIFY, values.nbytes, 6, 500_000, 1, 4)
    feed(circuit, stream + values.tobytes() + read_reply(5, 1.0), 65_000)
    np.testing.assert_array_equal(results[0], np.arange(500_000, dtype=float))


def test_close_names_the_pv_in_each_failed_request() -> None:
    circuit, _, _ = make_circuit()
    results: list[object] = []
    circuit.pending[1] = ReadRequest(Channel("T:a", 1), decoder(6), False, False, results.append)
    circuit.close(DisconnectedError("circuit to 127.0.0.1:5064 closed"))
    (error,) = results
    assert isinstance(error, DisconnectedError) and error.pv == "T:a" and "T:a" in str(error)


def test_write_notify_status_becomes_put_error() -> None:
    circuit, _, _ = make_circuit()
    channel = Channel("T:ao", 1)
    results: list[object] = []
    circuit.pending[3] = WriteRequest(channel, 5, results.append)
    circuit.pending[4] = WriteRequest(channel, 6, results.append)
    feed(circuit, protocol.header(Command.WRITE_NOTIFY, 0, 6, 1, 160, 3)
         + protocol.header(Command.WRITE_NOTIFY, 0, 6, 1, 1, 4), 100)
    error, success = results
    assert isinstance(error, PutError) and "T:ao" in str(error) and "ECA_PUTFAIL" in str(error)
    assert success is None


def test_error_response_fails_the_original_request() -> None:
    circuit, _, _ = make_circuit()
    channel = Channel("T:ro", 1)
    results: list[object] = []
    circuit.pending[8] = ReadRequest(channel, decoder(6), False, False, results.append)
    original = protocol.read_notify(6, 1, 2, 8)
    message = protocol.pad_string("no read access")
    feed(circuit, protocol.header(Command.ERROR, len(original) + len(message), 0, 0, 1, 368)
         + original + message, 7)
    (error,) = results
    assert isinstance(error, AccessDeniedError) and "T:ro" in str(error)


def test_close_fails_pending_requests() -> None:
    circuit, _, _ = make_circuit()
    results: list[object] = []
    circuit.pending[1] = ReadRequest(Channel("T:a", 1), decoder(6), False, False, results.append)
    circuit.channels[1] = Channel("T:a", 1)
    channels = circuit.close(ConnectionError("gone"))
    assert [c.name for c in channels] == ["T:a"]
    assert isinstance(results[0], ConnectionError)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40), st.integers(0, 40),
                          st.integers(0, 3), st.integers(0, 70000), st.binary(max_size=64)),
                max_size=8),
       st.binary(max_size=64))
def test_malformed_frames_only_raise_remote_protocol_errors(frames, tail) -> None:
    """Garbage headers with plausible commands, types and counts, then raw noise: the circuit
    either copes or raises RemoteProtocolError (which closes it), never anything else."""
    circuit, _, _ = make_circuit(max_payload=1 << 16)
    for cid in range(4):
        channel = Channel(f"T:{cid}", cid)
        circuit.channels[cid] = channel
        circuit.pending[cid] = ReadRequest(channel, decoder(Form.TIME + Native.DOUBLE), True,
                                           True, lambda value: None)
    stream = b"".join(protocol.header(command, len(payload), data_type % 35, count, p1, p1)
                      + payload for command, data_type, _, p1, count, payload in frames) + tail
    try:
        feed(circuit, stream, 13)
    except RemoteProtocolError:
        pass


def test_the_large_payload_buffer_grows_with_its_bytes(monkeypatch) -> None:
    monkeypatch.setattr("pvflow.io.large_payload.FIRST_CHUNK", 100_000)
    circuit, _, _ = make_circuit()
    circuit.pending[4] = ReadRequest(Channel("T:big", 1), decoder(Native.DOUBLE), True, False,
                                     lambda value: None)
    feed(circuit, protocol.header(Command.READ_NOTIFY, 8_000_000, 6, 1_000_000, 1, 4)
         + b"\0" * 300_000, 65_000)
    assert 300_000 + len(circuit.receive_view()) <= 600_000  # twice what came, not 8 MB


def test_a_caller_takes_its_own_answer_only_when_it_comes_first_and_whole() -> None:
    circuit, _, _ = make_circuit()
    channel = Channel("T:ai", 1)
    answers: list[tuple[int, float]] = []
    for ioid in (1, 2):
        circuit.pending[ioid] = ReadRequest(channel, decoder(Native.DOUBLE), False, False,
                                            lambda value, ioid=ioid: answers.append((ioid, value)))

    def arrive(data: bytes) -> None:  # as a reading caller receives: bytes in, nothing parsed
        view = circuit.receive_view()
        view[:len(data)] = data
        circuit.buffered(len(data))

    mine, other = read_reply(2, 2.5), read_reply(1, 1.5)
    arrive(mine[:10])
    assert circuit.take_reply(2) is None  # not all of it yet
    arrive(mine[10:] + other[:5])
    assert circuit.take_reply(2) is True and answers == [(2, 2.5)]
    arrive(other[5:])
    assert circuit.take_reply(2) is False  # another answer comes first: the I/O thread's
    assert answers == [(2, 2.5)] and circuit.has_buffered
    circuit.received(0)  # the I/O thread's parse of what the caller left
    assert answers == [(2, 2.5), (1, 1.5)] and not circuit.has_buffered
    circuit.close(DisconnectedError("gone"))
    assert circuit.take_reply(3) is False and not circuit.receive_view()
