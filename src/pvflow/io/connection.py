"""A TCP connection to a server, for either protocol (transport layer).

What is the same for Channel Access and pvAccess around a circuit lives here: a non-blocking
socket registered with the I/O thread, sends from any thread kept in order under one lock (a
backlog when the kernel's buffer is full, drained when the socket is writable again), and
receives straight into the circuit's buffer. The circuit (the protocol's state machine) comes
from the subclass; a failure closes this connection through its owner, the engine.

A thread that waits for one answer may read it itself (:meth:`Connection.read_reply`):
handed over by the I/O thread, an answer wakes two threads (the I/O thread, then the caller),
and on a virtual machine waking an idle CPU costs tens of microseconds, as much as the round
trip. The caller takes the connection's reader lock, stops the I/O thread watching the socket
for input (:meth:`Connection.claim`; a sync get does so before its request leaves), reads, and
takes its answer only if it comes first and whole; anything else is left in the circuit's
buffer for the I/O thread, in order.
"""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, cast

from ..errors import DisconnectedError, PVFlowError, RemoteProtocolError
from .completion import Completion
from .loop import READ, WRITE, IOLoop

# How long a reading caller blocks in one poll: Ctrl-C is seen between polls.
POLL_SLICE_MS = 1000
# The most a reading caller takes in one recv: what it does not parse stays in the circuit's
# buffer for the I/O thread, which must find room there for its next read.
CALLER_CHUNK = 16 * 1024


class Circuit(Protocol):
    """What a connection needs of a protocol's circuit."""

    address_text: str
    closed: bool
    output: list[bytes]

    def take_output(self) -> bytes: ...

    def receive_view(self) -> memoryview: ...

    def received(self, count: int) -> None: ...


class CallerReadCircuit(Circuit, Protocol):
    """A circuit whose answers a waiting caller may read (:meth:`Connection.read_reply`)."""

    @property
    def has_buffered(self) -> bool:
        """Bytes wait in the buffer, not yet parsed."""
        ...

    def buffered(self, count: int) -> None:
        """``count`` bytes came into :meth:`receive_view`; parsed by whoever reads next."""
        ...


class CallerReadBuffer:
    """The part of :class:`CallerReadCircuit` both protocols' circuits share: their receive
    buffer holds ``_filled`` bytes not yet parsed."""

    _filled: int
    closed: bool
    last_received: float

    @property
    def has_buffered(self) -> bool:
        return self._filled > 0 and not self.closed

    def buffered(self, count: int) -> None:
        self.last_received = time.monotonic()
        self._filled += count


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
        self._send_lock = threading.Lock()  # also guards what the socket is watched for
        self._backlog: list[memoryview] = []
        self.reader = threading.Lock()  # held by the thread reading and parsing the socket
        self._caller_reads = False  # a caller reads: the I/O thread does not watch for input
        self._closed = False
        self._caller_poll: Any = None  # select.poll of this socket, for reading callers
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
            self._watch()

    def _watch(self) -> None:
        with self._send_lock:
            self._watch_locked()

    def _watch_locked(self) -> None:
        """Watch the socket for what it needs now: input unless a caller reads it, output
        while a backlog waits (or the connect does). Under the send lock."""
        if self._closed:
            return
        if not self.connected:
            events = WRITE
        else:
            events = (0 if self._caller_reads else READ) | (WRITE if self._backlog else 0)
        self.client.loop.set_events(self.socket, events)

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
        self._watch()

    def _on_event(self, mask: int) -> None:
        try:
            if not self.connected:
                self._on_connected()
                return
            if mask & WRITE:
                self._drain_backlog()
            if mask & ~WRITE and self.reader.acquire(False):  # else a caller reads
                try:  # readable, or an error/hang-up that recv will report
                    self._receive()
                finally:
                    self.reader.release()
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
        self._watch()
        self.flush()

    def _receive(self) -> None:
        circuit = self.circuit
        try:
            count = self.socket.recv_into(circuit.receive_view())
        except BlockingIOError:
            return  # a caller read what made the socket readable
        if count == 0:
            raise DisconnectedError(f"{circuit.address_text} closed the circuit",
                                    address=circuit.address_text)
        circuit.received(count)
        self.echo_sent = None

    def _parse_buffered(self) -> None:
        """I/O thread: what a reading caller left in the circuit's buffer."""
        circuit = cast(CallerReadCircuit, self.circuit)
        if not circuit.has_buffered or not self.reader.acquire(False):
            return  # nothing left, or a caller reads again and will hand back again
        try:
            circuit.received(0)
        except (OSError, PVFlowError) as exc:
            self.client.close_connection(self, exc)
        finally:
            self.reader.release()

    # --- a caller reading its own answer -------------------------------------------------------
    def read_reply(self, take: Callable[[], bool | None], done: Completion,
                   seconds: float | None) -> bool:
        """Wait for ``done``, reading the socket in this thread when no other thread does.

        For circuits of :class:`CallerReadCircuit`. ``take()`` answers the request if its
        reply comes first in the circuit's buffer (True), needs more bytes (None) or finds
        something else first (False: the rest is the I/O thread's). False when ``seconds``
        passed first."""
        if done.done or not self.claim():
            return done.wait(seconds)
        return self.read_claimed(take, done, seconds)

    def claim(self) -> bool:
        """Take the socket's input from the I/O thread for this thread; False when another
        thread reads it, or it is closed. Give it back with :meth:`read_claimed` or
        :meth:`give_back`."""
        if not self.reader.acquire(False):
            return False
        with self._send_lock:
            if self._closed or not self.connected:
                self.reader.release()
                return False
            self._caller_reads = True
            self._watch_locked()
        return True

    def read_claimed(self, take: Callable[[], bool | None], done: Completion,
                     seconds: float | None) -> bool:
        """:meth:`read_reply` once the input is claimed; gives it back."""
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            self._read_until(take, done, deadline)
        except RemoteProtocolError as exc:  # closed by the I/O thread, as it would have
            self.client.loop.call_soon(self.client.close_connection, self, exc)
        finally:
            self.give_back()
        remaining = None if deadline is None else deadline - time.monotonic()
        return done.wait(remaining)

    def give_back(self) -> None:
        """Return the claimed input to the I/O thread, with what this thread left unparsed."""
        with self._send_lock:
            self._caller_reads = False
            self._watch_locked()
        self.reader.release()
        if cast(CallerReadCircuit, self.circuit).has_buffered:
            self.client.loop.call_soon(self._parse_buffered)

    def _read_until(self, take: Callable[[], bool | None], done: Completion,
                    deadline: float | None) -> None:
        if self._caller_poll is None:
            fileno = self.socket.fileno()
            if fileno < 0:
                return  # closed since it was claimed
            self._caller_poll = select.poll()
            self._caller_poll.register(fileno, select.POLLIN)
        poll = self._caller_poll.poll
        circuit = cast(CallerReadCircuit, self.circuit)
        while not done.done and take() is None:
            wait = POLL_SLICE_MS if deadline is None else \
                min(POLL_SLICE_MS, max(0, int((deadline - time.monotonic()) * 1000) + 1))
            if not poll(wait):
                if deadline is not None and time.monotonic() >= deadline:
                    return
                continue
            view = circuit.receive_view()[:CALLER_CHUNK]
            if not view:
                return
            try:
                count = self.socket.recv_into(view)
            except BlockingIOError:
                continue
            except OSError:
                return  # the I/O thread meets the same error and closes the circuit
            if count == 0:
                return  # the end of the stream stays for the I/O thread to find
            circuit.buffered(count)
            self.echo_sent = None

    def close(self) -> None:
        with self._send_lock:
            self._closed = True
        self.client.loop.unregister(self.socket)
        self.socket.close()
