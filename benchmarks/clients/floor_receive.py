"""The floors' receive side: one buffer per blocking TCP socket, messages viewed in place.

A payload larger than ``LARGE`` that has not fully arrived is read straight into a buffer of
its own, with no copy, as a client library does; a smaller one waits in the shared buffer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from socket import socket as Socket

LARGE = 1 << 16


class ReceiveBuffer:
    """What both floors' circuits read through; the subclass parses its protocol's headers."""

    socket: Socket

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.offset = 0

    def fill(self) -> None:
        """Block for more bytes; what was consumed is dropped first (a payload handed out may
        still be viewed: the old buffer stays alive as long as it is)."""
        self.buffer = self.buffer[self.offset:]
        self.offset = 0
        chunk = self.socket.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the circuit")
        self.buffer += chunk

    def large(self, start: int, size: int) -> memoryview:
        """The payload of ``size`` bytes at ``start``, completed from the socket."""
        payload = bytearray(size)
        have = len(self.buffer) - start
        payload[:have] = self.buffer[start:]
        view = memoryview(payload)
        while have < size:
            received = self.socket.recv_into(view[have:])
            if not received:
                raise ConnectionError("the server closed the circuit")
            have += received
        self.buffer, self.offset = bytearray(), 0
        return view

    def kept(self, payload: memoryview) -> memoryview | bytes:
        """``payload`` as a caller may keep it: a view of the shared buffer is copied."""
        return payload if payload.obj is not self.buffer else bytes(payload)

    def read_in_thread(self, read: Callable[[], None]) -> Callable[[], None]:
        """Run ``read`` (a monitor's delivery loop) on a thread of its own until the circuit
        closes; returns what closes it."""
        def run() -> None:
            try:
                read()
            except OSError:
                pass  # closed

        threading.Thread(target=run, daemon=True).start()
        return self.socket.close
