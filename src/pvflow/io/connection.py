"""A TCP connection to a server, for either protocol (transport layer).

What is the same for Channel Access and pvAccess around a circuit lives here: a non-blocking
socket registered with the I/O thread, sends from any thread kept in order under one lock (a
backlog when the kernel's buffer is full, drained when the socket is writable again), and
receives straight into the circuit's buffer. The circuit (the protocol's state machine) comes
from the subclass; a failure closes this connection through its owner, the engine.
"""

from __future__ import annotations

import errno
import socket
import threading
from typing import Any, Generic, Protocol, TypeVar

from ..errors import DisconnectedError, PVFlowError
from .loop import READ, WRITE, IOLoop


class Circuit(Protocol):
    """What a connection needs of a protocol's circuit."""

    address_text: str
    closed: bool
    output: list[bytes]

    def take_output(self) -> bytes: ...

    def receive_view(self) -> memoryview: ...

    def received(self, count: int) -> None: ...


CircuitT = TypeVar("CircuitT", bound=Circuit)


class Owner(Protocol):
    """The engine a connection reports to."""

    loop: IOLoop

    def close_connection(self, connection: Any, error: BaseException,
                         research: bool = True) -> None: ...  # its own kind of connection


class Connection(Generic[CircuitT]):
    """A circuit plus its socket. Sends come from any thread; receives on the I/O thread."""

    def __init__(self, client: Owner, host: str, port: int):
        self.client = client
        self.key = (host, port)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.socket.setblocking(False)
        self.connected = False
        self.echo_sent: float | None = None
        self._send_lock = threading.Lock()
        self._backlog: list[memoryview] = []
        self.circuit = self._make_circuit(host, port)
        self.socket.connect_ex(self.key)
        client.loop.register(self.socket, WRITE, self._on_event)  # writable: connect done

    def _make_circuit(self, host: str, port: int) -> CircuitT:
        """The protocol state this socket carries: each protocol supplies its own."""
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        """Write ``data`` in order with every other send; never blocks the caller."""
        with self._send_lock:
            if self._backlog or not self.connected:
                self._backlog.append(memoryview(data))
                return
            try:
                sent = self.socket.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise DisconnectedError(f"circuit to {self.circuit.address_text} is closed: "
                                        f"{exc}", address=self.circuit.address_text) from None
            if sent < len(data):
                self._backlog.append(memoryview(data)[sent:])
                self.client.loop.call_soon(self._watch_writable)

    def flush(self) -> None:
        """I/O thread: send the frames queued on the circuit, in one write."""
        if self.circuit.output and self.connected and not self.circuit.closed:
            try:
                self.send(self.circuit.take_output())
            except DisconnectedError as exc:
                self.client.close_connection(self, exc)

    def _watch_writable(self) -> None:
        if not self.circuit.closed:
            self.client.loop.modify(self.socket, READ | WRITE, self._on_event)

    def _drain_backlog(self) -> None:
        with self._send_lock:
            while self._backlog:
                chunk = self._backlog[0]
                try:
                    sent = self.socket.send(chunk)
                except BlockingIOError:
                    return
                if sent < len(chunk):
                    self._backlog[0] = chunk[sent:]
                    return
                self._backlog.pop(0)
        self.client.loop.modify(self.socket, READ, self._on_event)

    def _on_event(self, mask: int) -> None:
        try:
            if not self.connected:
                self._on_connected()
                return
            if mask & WRITE:
                self._drain_backlog()
            if mask & ~WRITE:  # readable, or an error/hang-up that recv will report
                self._receive()
        except (OSError, PVFlowError) as exc:
            self.client.close_connection(self, exc)

    def _on_connected(self) -> None:
        error = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise DisconnectedError(f"cannot connect to {self.circuit.address_text}: "
                                    f"{errno.errorcode.get(error, error)}",
                                    address=self.circuit.address_text)
        with self._send_lock:
            self.connected = True
        self.client.loop.modify(self.socket, READ | WRITE if self._backlog else READ,
                               self._on_event)
        self.flush()

    def _receive(self) -> None:
        circuit = self.circuit
        count = self.socket.recv_into(circuit.receive_view())
        if count == 0:
            raise DisconnectedError(f"{circuit.address_text} closed the circuit",
                                    address=circuit.address_text)
        circuit.received(count)
        self.echo_sent = None

    def close(self) -> None:
        self.client.loop.unregister(self.socket)
        self.socket.close()
