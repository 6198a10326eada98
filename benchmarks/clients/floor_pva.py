"""The pvAccess floor: the smallest Python program that does each row's wire work over pvAccess.

As the CA floor (``floor_ca.py``): no client library, no I/O thread, blocking sockets,
``struct``-packed requests sent in one ``sendall``, replies parsed in place. Its pvRequests are
constant bytes (``field(value)``, with ``record[block=true]`` for a put that waits for
processing, as a CA put-callback does), its GET and PUT operations are created once per channel
and then executed again and again, as pvxs and pvflow do. It knows what the benchmark reads:
little-endian servers (pvxs), doubles and double arrays. Every pvflow PVA row is set against it.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy

from . import floor_search
from .floor_adapter import FloorAdapter, Server
from .floor_receive import LARGE, ReceiveBuffer
from .base import Closer, MonitorCallback

HEADER = struct.Struct("<BBBBI")
MAGIC, VERSION = 0xCA, 2
CONTROL, SEGMENTED, BIG_ENDIAN = 0x01, 0x30, 0x80
SEGMENT_LAST = 0x20
VALIDATION, SEARCH, SEARCH_RESPONSE, CREATE_CHANNEL, VALIDATED = 1, 3, 4, 7, 9
GET, PUT, MONITOR = 10, 11, 13
INIT, PIPELINE, START = 0x08, 0x80, 0x44
EXEC_HEAD = struct.Struct("<BBBBIIIB")
IDS = struct.Struct("<II")
DOUBLE = struct.Struct("<d")
DOUBLES = numpy.dtype("<f8")
MONITOR_QUEUE, MONITOR_WINDOW = 100, 10_000


def _string(text: str) -> bytes:
    return bytes((len(text),)) + text.encode()


def _structure(**fields: bytes) -> bytes:
    """A structure's type description (empty id), as the pvRequest needs."""
    return b"\x80\x00" + bytes((len(fields),)) + b"".join(
        _string(name) + kind for name, kind in fields.items())


_VALUE_FIELD = _structure(value=_structure())
# pvRequests: type description, then the values of its string leaves
VALUE_REQUEST = _structure(field=_VALUE_FIELD)
PUT_REQUEST = _structure(field=_VALUE_FIELD,
                         record=_structure(_options=_structure(block=b"\x60"))) + _string("true")
MONITOR_REQUEST = _structure(field=_VALUE_FIELD, record=_structure(
    _options=_structure(queueSize=b"\x60", pipeline=b"\x60"))) + \
    _string(str(MONITOR_QUEUE)) + _string("true")


def _message(command: int, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, VERSION, 0, command, len(payload)) + payload


def _exec(command: int, sid: int, ioid: int, sub: int, body: bytes = b"") -> bytes:
    return EXEC_HEAD.pack(MAGIC, VERSION, 0, command, 9 + len(body), sid, ioid, sub) + body


def _skip_bitset(payload: Any, offset: int) -> tuple[bool, int]:
    """(any bit set, offset after the bitset); sizes below 254 only (a few fields)."""
    size = payload[offset]
    return any(payload[offset + 1:offset + 1 + size]), offset + 1 + size


def _double_or_array(payload: Any, offset: int) -> Any:
    """A double, or a double array (size, elements), at ``offset``: whichever fills the rest."""
    if len(payload) - offset == DOUBLE.size:
        return DOUBLE.unpack_from(payload, offset)[0]
    first = payload[offset]
    count, offset = (first, offset + 1) if first < 254 else \
        (struct.unpack_from("<I", payload, offset + 1)[0], offset + 5)
    return numpy.frombuffer(payload, DOUBLES, count, offset)


class Circuit(ReceiveBuffer):
    """One blocking TCP circuit to a pvAccess server, validated at construction."""

    def __init__(self, address: tuple[str, int]):
        super().__init__()
        self.socket = socket.create_connection(address)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.replies(VALIDATION, 1)
        self.socket.sendall(_message(VALIDATION, struct.pack("<IHH", 0x10000, 0x7FFF, 0)
                                     + _string("anonymous") + b"\xff"))
        self.replies(VALIDATED, 1)

    def messages(self) -> Iterator[tuple[int, Any]]:
        """Every application message as it arrives: (command, payload); segments joined."""
        segments: list[bytes] = []
        for flags, command, payload in self._frames():
            if flags & BIG_ENDIAN:
                raise RuntimeError("the floor reads little-endian servers only")
            if flags & SEGMENTED:
                segments.append(bytes(payload))
                if (flags & SEGMENTED) != SEGMENT_LAST:
                    continue
                payload, segments = b"".join(segments), []
            yield command, payload

    def _frames(self) -> Iterator[tuple[int, int, Any]]:
        while True:
            available = len(self.buffer) - self.offset
            if available >= HEADER.size:
                _, _, flags, command, size = HEADER.unpack_from(self.buffer, self.offset)
                start = self.offset + HEADER.size
                if flags & CONTROL:
                    self.offset = start
                    continue
                if len(self.buffer) >= start + size:
                    self.offset = start + size
                    yield flags, command, memoryview(self.buffer)[start:start + size]
                    continue
                if size > LARGE:
                    yield flags, command, self.large(start, size)
                    continue
            self.fill()

    def replies(self, command: int, count: int) -> list[Any]:
        """The payloads of the next ``count`` messages of ``command`` (others skipped)."""
        found: list[Any] = []
        if count:
            for one_command, payload in self.messages():
                if one_command == command:
                    found.append(self.kept(payload))
                    if len(found) == count:
                        break
        return found


def _checked(payload: Any, what: str) -> int:
    """The offset after a reply's (ioid, sub-command, status); raises on a bad status."""
    if payload[5] != 0xFF:
        raise RuntimeError(f"{what} refused: {bytes(payload[5:]).decode(errors='replace')}")
    return 6


class FloorPvaAdapter(FloorAdapter):
    """Channels are ``(circuit, sid)``; each has a GET and a PUT operation once used."""

    protocol = "pva"
    normative_types = False

    def open(self) -> None:
        super().open()
        self.gets: dict[str, int] = {}  # name: ioid of its GET operation
        self.puts: dict[str, int] = {}

    def _targets(self) -> list[Server]:
        port = int(os.environ.get("EPICS_PVA_BROADCAST_PORT", "5076"))
        return [_address(entry, port) for entry in os.environ["EPICS_PVA_ADDR_LIST"].split()]

    def _circuit(self, server: Server) -> Circuit:
        return Circuit(server)

    def _search(self, names: Sequence[str]) -> dict[Server, list[tuple[int, str]]]:
        """All names, 60 to a datagram, paced by a fixed window; (cid, name) by server."""
        udp = floor_search.open_socket()
        reply_port = udp.getsockname()[1]
        cids = dict(zip(self._ids(len(names)), names))
        pairs = list(cids.items())
        datagrams = []
        for first in range(0, len(pairs), 60):
            chunk = pairs[first:first + 60]
            body = [struct.pack("<IB3x", first, 0x80), b"\0" * 16,
                    struct.pack("<H", reply_port), b"\x01\x03tcp", struct.pack("<H", len(chunk))]
            body += [struct.pack("<I", cid) + _string(name) for cid, name in chunk]
            datagrams.append((_message(SEARCH, b"".join(body)), [cid for cid, _ in chunk]))
        found = floor_search.search(udp, datagrams, self.targets, _answers, self.timeout)
        return floor_search.by_server(found, cids)

    def connect(self, names: Sequence[str]) -> None:
        for circuit, pairs in self._new_by_circuit(names):
            circuit.socket.sendall(b"".join(
                _message(CREATE_CHANNEL, struct.pack("<HI", 1, cid) + _string(name))
                for cid, name in pairs))
            names_by_cid = dict(pairs)
            for payload in circuit.replies(CREATE_CHANNEL, len(pairs)):
                cid, sid = IDS.unpack_from(payload)
                self.channels[names_by_cid[cid]] = (circuit, sid)

    def _operations(self, names: Sequence[str], command: int, table: dict[str, int],
                    request: bytes) -> None:
        """Create the GET (or PUT) operation of every name that has none, one write a circuit."""
        new = [name for name in names if name not in table]
        per_circuit: dict[Circuit, list[bytes]] = {}
        for ioid, name in zip(self._ids(len(new)), new):
            circuit, sid = self.channels[name]
            table[name] = ioid
            per_circuit.setdefault(circuit, []).append(
                _message(command, struct.pack("<IIB", sid, ioid, INIT) + request))
        for circuit, frames in per_circuit.items():
            circuit.socket.sendall(b"".join(frames))
            for payload in circuit.replies(command, len(frames)):
                _checked(payload, "operation")

    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        """One GET exec for every name in one write per circuit; replies by ioid."""
        self._operations(names, GET, self.gets, VALUE_REQUEST)
        per_circuit: dict[Circuit, list[bytes]] = {}
        for name in names:
            circuit, sid = self.channels[name]
            per_circuit.setdefault(circuit, []).append(_exec(GET, sid, self.gets[name], 0))
        values: dict[int, Any] = {}
        for circuit, frames in per_circuit.items():
            circuit.socket.sendall(b"".join(frames))
            for payload in circuit.replies(GET, len(frames)):
                _, offset = _skip_bitset(payload, _checked(payload, "get"))
                values[IDS.unpack_from(payload)[0]] = _double_or_array(payload, offset)
        return [values[self.gets[name]] for name in names]

    def put(self, name: str, value: float) -> None:
        self._operations([name], PUT, self.puts, PUT_REQUEST)
        circuit, sid = self.channels[name]
        circuit.socket.sendall(_exec(PUT, sid, self.puts[name], 0, b"\x01\x02"
                                     + DOUBLE.pack(value)))
        _checked(circuit.replies(PUT, 1)[0], f"put to {name}")

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        """A pipelined MONITOR on a circuit of its own, read by a thread of its own; the
        updates of each read pass are acknowledged at once."""
        server = next(key for key, circuit in self.circuits.items()
                      if circuit is self.channels[name][0])
        circuit = Circuit(server)
        cid, ioid = self._ids(2)
        circuit.socket.sendall(_message(CREATE_CHANNEL, struct.pack("<HI", 1, cid)
                                        + _string(name)))
        sid = IDS.unpack_from(circuit.replies(CREATE_CHANNEL, 1)[0])[1]
        circuit.socket.sendall(_message(MONITOR, struct.pack("<IIB", sid, ioid, INIT | PIPELINE)
                                        + MONITOR_REQUEST + struct.pack("<I", MONITOR_WINDOW)))
        _checked(circuit.replies(MONITOR, 1)[0], f"monitor of {name}")
        circuit.socket.sendall(_exec(MONITOR, sid, ioid, START))

        def deliver() -> None:
            received = 0
            for command, payload in circuit.messages():
                if command != MONITOR or payload[4] != 0:
                    continue
                changed, offset = _skip_bitset(payload, 5)
                received += 1
                if changed:  # the scalar value, then the overrun bitset
                    callback(DOUBLE.unpack_from(payload, offset)[0])
                if circuit.offset == len(circuit.buffer):  # the read pass is done
                    circuit.socket.sendall(_exec(MONITOR, sid, ioid, PIPELINE,
                                                 struct.pack("<I", received)))
                    received = 0

        return circuit.read_in_thread(deliver)


def _answers(data: bytes, sender: str) -> Iterator[tuple[int, tuple[str, int]]]:
    """(cid, server) of every search reply in one datagram (pvxs answers big-endian)."""
    offset = 0
    while offset + HEADER.size <= len(data):
        _, _, flags, command, size = HEADER.unpack_from(data, offset)
        order = ">" if flags & BIG_ENDIAN else "<"
        size, = struct.unpack(order + "I", struct.pack("<I", size))
        start = offset + HEADER.size
        offset = start + (0 if flags & CONTROL else size)
        if command == SEARCH_RESPONSE and not flags & CONTROL:
            port, = struct.unpack_from(order + "H", data, start + 32)
            at = start + 34 + 1 + data[start + 34]  # past the protocol name
            count, = struct.unpack_from(order + "H", data, at + 1)
            for cid in struct.unpack_from(f"{order}{count}I", data, at + 3):
                yield cid, (sender, port)


def _address(entry: str, port: int) -> tuple[str, int]:
    host, _, given = entry.partition(":")
    return host, int(given or port)
