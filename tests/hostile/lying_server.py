"""The part of a lying test server that is the same for Channel Access and pvAccess: one UDP
socket for name searches and one TCP listener on the same port of 127.0.0.1, served by a
thread, with counts of what clients sent that tests wait on (never on the clock).

Hand-written on raw sockets on purpose: no real server can be made to misbehave on cue. Each
reaction is a function of a request returning the bytes to send (``b""``: stay silent;
``None``: close the connection).
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from pvflow.demo.network import free_port


class LyingServer:
    """Subclasses parse their protocol: ``answer_search(datagram, sender)`` and
    ``take_requests(buffer, client)`` (consumes complete requests, returns bytes used)."""

    def __init__(self, names: list[str], on_accept: Callable[[], bytes] | None = None):
        self.names = set(names)
        self.on_accept = on_accept
        self.port = free_port()
        self.received: Counter[int] = Counter()  # requests by command
        self.searches: Counter[str] = Counter()  # searches for our names
        self.accepted = 0
        self._condition = threading.Condition()
        self._selector = selectors.DefaultSelector()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", self.port))
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind(("127.0.0.1", self.port))
        self._tcp.listen()
        self._clients: dict[socket.socket, bytearray] = {}
        self._wake_read, self._wake_write = socket.socketpair()
        self._selector.register(self._udp, selectors.EVENT_READ, self._on_datagram)
        self._selector.register(self._tcp, selectors.EVENT_READ, self._on_accept)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=type(self).__name__,
                                        daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Any:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._wake_write.send(b"x")
        self._thread.join(5)
        for sock in [*self._clients, self._udp, self._tcp, self._wake_read, self._wake_write]:
            sock.close()
        self._selector.close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self), timeout)

    def send_to_clients(self, data: bytes) -> None:
        """Push ``data`` unasked to every connected client (from the test's thread)."""
        for client in list(self._clients):
            client.sendall(data)

    def count(self, command: int | None = None, name: str | None = None) -> None:
        """Record a request (or a search for ``name``) and wake the tests waiting on counts."""
        with self._condition:
            if command is not None:
                self.received.update([command])
            if name is not None:
                self.searches.update([name])
            self._condition.notify_all()

    # --- what the protocol says ---------------------------------------------------------------
    def answer_search(self, datagram: bytes, sender: tuple[str, int]) -> None:
        raise NotImplementedError

    def greeting(self) -> bytes:
        """What the server says first on a new circuit."""
        return b""

    def take_requests(self, buffer: bytearray, client: socket.socket) -> int | None:
        """Answer the complete requests in ``buffer``: bytes consumed, None to hang up."""
        raise NotImplementedError

    # --- the server's thread ------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(1.0):
                if key.data is not None:
                    key.data(key.fileobj)

    def _on_datagram(self, sock: socket.socket) -> None:
        data, sender = sock.recvfrom(65536)
        self.answer_search(data, sender)

    def _on_accept(self, sock: socket.socket) -> None:
        client, _ = sock.accept()
        self._clients[client] = bytearray()
        self._selector.register(client, selectors.EVENT_READ, self._on_client)
        with self._condition:
            self.accepted += 1
            self._condition.notify_all()
        client.sendall(self.greeting() + (self.on_accept() if self.on_accept else b""))

    def _on_client(self, client: socket.socket) -> None:
        try:
            data = client.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        buffer = self._clients[client]
        buffer += data
        try:
            used = self.take_requests(buffer, client)
        except OSError:
            used = None
        if used is None:
            self.drop(client)
            return
        del buffer[:used]

    def reply(self, client: socket.socket, answer: bytes | None) -> bool:
        """Send a reaction's answer; False when it said to hang up."""
        if answer is None:
            return False
        if answer:
            client.sendall(answer)
        return True

    def drop(self, client: socket.socket) -> None:
        if client in self._clients:
            self._selector.unregister(client)
            self._clients.pop(client, None)
            client.close()
