"""A minimal hand-packed Channel Access writer, independent of every client under test.

The harness needs two things no single peer should provide: filling the waveforms before any
client reads them, and a put flood whose rate does not depend on the client being measured. A
raw TCP circuit with ``struct``-packed WRITE messages does both with no client library.

Run as ``python -m benchmarks.rawca flood NAME COUNT``: connects, prints ``ready``, waits for a
line on stdin, writes COUNT values ``1..COUNT`` as fast as it can, waits for the IOC to have
processed them (an ECHO round trip), and prints ``done <put seconds> <drain seconds>``.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Sequence

import numpy

HEADER = struct.Struct(">HHHHII")
EXTENDED_SIZES = struct.Struct(">II")
CA_MINOR_VERSION = 13
DBR_DOUBLE = 6
ECA_NORMAL = 1

COMMAND_VERSION = 0
COMMAND_WRITE = 4
COMMAND_CREATE_CHANNEL = 18
COMMAND_WRITE_NOTIFY = 19
COMMAND_CLIENT_NAME = 20
COMMAND_HOST_NAME = 21
COMMAND_ECHO = 23
COMMAND_CREATE_CHANNEL_FAILED = 26


def _padded(text: str) -> bytes:
    """CA strings are NUL-terminated and padded to a multiple of 8 bytes."""
    raw = text.encode() + b"\0"
    return raw + b"\0" * (-len(raw) % 8)


def _message(command: int, payload: bytes = b"", data_type: int = 0, count: int = 0,
             parameter1: int = 0, parameter2: int = 0) -> bytes:
    """One CA message; payloads of 64 KiB or more use the extended header."""
    payload += b"\0" * (-len(payload) % 8)
    if len(payload) >= 0xFFFF or count >= 0xFFFF:
        return (HEADER.pack(command, 0xFFFF, data_type, 0, parameter1, parameter2)
                + EXTENDED_SIZES.pack(len(payload), count) + payload)
    return HEADER.pack(command, len(payload), data_type, count, parameter1, parameter2) + payload


class RawCircuit:
    """One TCP circuit to the IOC, with channels created by name (no UDP search: the port is known)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, timeout: float = 10.0):
        port = port or int(os.environ["EPICS_CA_SERVER_PORT"])
        self.socket = socket.create_connection((host, port), timeout=timeout)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.sendall(
            _message(COMMAND_VERSION, count=CA_MINOR_VERSION)
            + _message(COMMAND_HOST_NAME, _padded("localhost"))
            + _message(COMMAND_CLIENT_NAME, _padded("benchmarks"))
        )
        self._next_id = 1

    def _receive_exactly(self, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self.socket.recv(size - len(chunks))
            if not chunk:
                raise ConnectionError("IOC closed the circuit")
            chunks += chunk
        return bytes(chunks)

    def _receive_until(self, command: int) -> tuple[int, int, int, int]:
        """Skip messages until one with this command; return (data_type, count, p1, p2)."""
        while True:
            found, size, data_type, count, parameter1, parameter2 = HEADER.unpack(
                self._receive_exactly(HEADER.size))
            if size == 0xFFFF and count == 0:
                size, count = EXTENDED_SIZES.unpack(self._receive_exactly(EXTENDED_SIZES.size))
            self._receive_exactly(size)
            if found == COMMAND_CREATE_CHANNEL_FAILED:
                raise LookupError(f"IOC refused channel (cid {parameter1})")
            if found == command:
                return data_type, count, parameter1, parameter2

    def create_channel(self, name: str) -> int:
        """Create a channel and return its server id."""
        channel_id = self._take_id()
        self.socket.sendall(_message(COMMAND_CREATE_CHANNEL, _padded(name),
                                     parameter1=channel_id, parameter2=CA_MINOR_VERSION))
        return self._receive_until(COMMAND_CREATE_CHANNEL)[3]

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id

    @staticmethod
    def write_message(server_id: int, values: Sequence[float], notify: bool = False,
                      request_id: int = 0) -> bytes:
        """A WRITE (fire and forget) or WRITE_NOTIFY of doubles."""
        command = COMMAND_WRITE_NOTIFY if notify else COMMAND_WRITE
        payload = numpy.asarray(values, dtype=">f8").tobytes()
        return _message(command, payload, DBR_DOUBLE, len(values), server_id, request_id)

    def write_and_wait(self, server_id: int, values: Sequence[float]) -> None:
        """Write with completion: returns once the record has processed the value."""
        request_id = self._take_id()
        self.socket.sendall(self.write_message(server_id, values, notify=True,
                                               request_id=request_id))
        status = self._receive_until(COMMAND_WRITE_NOTIFY)[2]
        if status != ECA_NORMAL:
            raise RuntimeError(f"write refused by the IOC (ECA status {status})")

    def echo(self) -> None:
        """An ECHO round trip: the IOC answers it only after every earlier request on the circuit."""
        self.socket.sendall(_message(COMMAND_ECHO))
        self._receive_until(COMMAND_ECHO)

    def close(self) -> None:
        self.socket.close()


def write_arrays(port: int, arrays: dict[str, Sequence[float]]) -> None:
    """Fill records (the waveforms) and wait until each write has completed."""
    circuit = RawCircuit(port=port)
    try:
        for name, values in arrays.items():
            circuit.write_and_wait(circuit.create_channel(name), values)
    finally:
        circuit.close()


def flood(name: str, count: int) -> None:
    """The putter process of the monitor flood (see the module docstring)."""
    circuit = RawCircuit()
    server_id = circuit.create_channel(name)
    messages = [RawCircuit.write_message(server_id, [float(value)]) for value in range(1, count + 1)]
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for message in messages:  # one send per put: a tight put loop, not one big buffer
        circuit.socket.sendall(message)
    sent = time.perf_counter()
    circuit.echo()
    drained = time.perf_counter()
    print(f"done {sent - started:.6f} {drained - sent:.6f}", flush=True)
    circuit.close()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "flood":
        sys.exit("usage: python -m benchmarks.rawca flood NAME COUNT")
    flood(sys.argv[2], int(sys.argv[3]))
