"""The Channel Access floor: the smallest Python program that does each row's wire work.

No client library, no I/O thread, no objects per message: blocking sockets, ``struct``-packed
requests sent in one ``sendall`` and replies parsed with ``unpack_from`` straight out of one
receive buffer. Every client row is also reported as a ratio to this one: how close a client
comes to what Python itself allows. It knows only what the benchmark reads (doubles, scalar
and array) and searches the address list once, at once (a thousand names need no pacing).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy

from ..rawca import (CA_MINOR_VERSION, DBR_DOUBLE, ECA_NORMAL, EXTENDED_SIZES, HEADER,
                     RawCircuit, _message, _padded)
from . import floor_search
from .floor_adapter import FloorAdapter, Server
from .floor_receive import LARGE, ReceiveBuffer
from .base import Closer, MonitorCallback, first_element

SEARCH, CREATE_CHANNEL, READ_NOTIFY, WRITE_NOTIFY, EVENT_ADD = 6, 18, 15, 19, 1
DONT_REPLY = 5
DOUBLES = numpy.dtype(">f8")
MASK_VALUE_ALARM = 1 | 4
DOUBLE = struct.Struct(">d")


class Circuit(RawCircuit, ReceiveBuffer):
    """One blocking TCP circuit (the harness's raw one) and its receive buffer."""

    def __init__(self, address: tuple[str, int]):
        RawCircuit.__init__(self, *address)
        ReceiveBuffer.__init__(self)

    def messages(self) -> Iterator[tuple[int, int, int, int, int, memoryview]]:
        """Every message as it arrives: (command, data type, count, p1, p2, payload)."""
        while True:
            available = len(self.buffer) - self.offset
            if available >= HEADER.size:
                command, size, data_type, count, p1, p2 = HEADER.unpack_from(self.buffer,
                                                                             self.offset)
                start = self.offset + HEADER.size
                if size == 0xFFFF and count == 0 and available >= HEADER.size + 8:
                    size, count = EXTENDED_SIZES.unpack_from(self.buffer, start)
                    start += 8
                if len(self.buffer) >= start + size:
                    self.offset = start + size
                    yield command, data_type, count, p1, p2, memoryview(self.buffer)[
                        start:start + size]
                    continue
                if size > LARGE and start <= len(self.buffer):
                    yield command, data_type, count, p1, p2, self.large(start, size)
                    continue
            self.fill()

    def replies(self, command: int, count: int) -> list[tuple[int, int, int, Any]]:
        """The next ``count`` replies of ``command`` (others skipped): (count, p1, p2, payload)."""
        found = []
        if count:
            for message in self.messages():
                if message[0] == command:
                    found.append((message[2], message[3], message[4], self.kept(message[5])))
                    if len(found) == count:
                        break
        return found


class FloorCaAdapter(FloorAdapter):
    """Channels are ``(circuit, sid, element count)``."""

    def _targets(self) -> list[Server]:
        return [_address(entry) for entry in os.environ["EPICS_CA_ADDR_LIST"].split()]

    def _circuit(self, server: Server) -> Circuit:
        return Circuit(server)

    def _search(self, names: Sequence[str]) -> dict[Server, list[tuple[int, str]]]:
        """All names in as few datagrams as fit, paced by a fixed window; (cid, name) by
        server."""
        cids = dict(zip(self._ids(len(names)), names))
        head = _message(0, count=CA_MINOR_VERSION)
        datagrams: list[tuple[bytes, list[int]]] = []
        parts, asked = [head], []
        for cid, name in cids.items():
            parts.append(_message(SEARCH, _padded(name), DONT_REPLY, CA_MINOR_VERSION, cid, cid))
            asked.append(cid)
            if sum(map(len, parts)) > 1400:
                datagrams.append((b"".join(parts), asked))
                parts, asked = [head], []
        if asked:
            datagrams.append((b"".join(parts), asked))
        found = floor_search.search(floor_search.open_socket(), datagrams, self.targets,
                                    _answers, self.timeout)
        return floor_search.by_server(found, cids)

    def connect(self, names: Sequence[str]) -> None:
        for circuit, pairs in self._new_by_circuit(names):
            circuit.socket.sendall(b"".join(
                _message(CREATE_CHANNEL, _padded(name), 0, 0, cid, CA_MINOR_VERSION)
                for cid, name in pairs))
            names_by_cid = dict(pairs)
            for count, cid, sid, _ in circuit.replies(CREATE_CHANNEL, len(pairs)):
                self.channels[names_by_cid[cid]] = (circuit, sid, count)

    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        """READ_NOTIFY for every name in one write per circuit; replies by ioid."""
        ioids = self._ids(len(names))
        per_circuit: dict[Circuit, list[bytes]] = {}
        for ioid, name in zip(ioids, names):
            circuit, sid, count = self.channels[name]
            per_circuit.setdefault(circuit, []).append(
                _message(READ_NOTIFY, b"", DBR_DOUBLE, count, sid, ioid))
        values: dict[int, Any] = {}
        for circuit, frames in per_circuit.items():
            circuit.socket.sendall(b"".join(frames))
            for count, status, ioid, payload in circuit.replies(READ_NOTIFY, len(frames)):
                values[ioid] = DOUBLE.unpack_from(payload)[0] if count == 1 else \
                    numpy.frombuffer(payload, DOUBLES, count)
        return [values[ioid] for ioid in ioids]

    def put(self, name: str, value: float) -> None:
        circuit, sid, _ = self.channels[name]
        ioid = self._ids(1)[0]
        circuit.socket.sendall(_message(WRITE_NOTIFY, struct.pack(">d", value), DBR_DOUBLE, 1,
                                        sid, ioid))
        _, status, _, _ = circuit.replies(WRITE_NOTIFY, 1)[0]
        if status != ECA_NORMAL:
            raise RuntimeError(f"put to {name} refused (ECA {status})")

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        """EVENT_ADD on a circuit of its own, read by a thread of its own."""
        _, _, count = self.channels[name]
        server = next(key for key, circuit in self.circuits.items()
                      if circuit is self.channels[name][0])
        circuit = Circuit(server)
        cid = self._ids(1)[0]
        circuit.socket.sendall(_message(CREATE_CHANNEL, _padded(name), 0, 0, cid,
                                        CA_MINOR_VERSION))
        sid = circuit.replies(CREATE_CHANNEL, 1)[0][2]
        circuit.socket.sendall(_message(EVENT_ADD, struct.pack(">fffHxx", 0, 0, 0,
                                                               MASK_VALUE_ALARM),
                                        DBR_DOUBLE, count, sid, cid))

        def deliver() -> None:
            for command, _, count, _, _, payload in circuit.messages():
                if command == EVENT_ADD and len(payload):
                    callback(first_element(numpy.frombuffer(payload, DOUBLES, count)))

        return circuit.read_in_thread(deliver)


def _answers(data: bytes, host: str) -> Iterator[tuple[int, tuple[str, int]]]:
    """(cid, server) of every search reply in one datagram."""
    offset = 0
    while offset + HEADER.size <= len(data):
        command, size, port, _, _, cid = HEADER.unpack_from(data, offset)
        if command == SEARCH:
            yield cid, (host, port)
        offset += HEADER.size + size


def _address(entry: str) -> tuple[str, int]:
    host, _, port = entry.partition(":")
    return host, int(port or os.environ.get("EPICS_CA_SERVER_PORT", "5064"))
