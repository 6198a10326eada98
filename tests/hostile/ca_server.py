"""A Channel Access server that lies: it answers name searches on 127.0.0.1 like any IOC,
then does what the test tells it (bad types, lying sizes, garbage, floods, silence).

Hand-written on raw sockets on purpose: no real server can be made to misbehave on cue. Each
reaction is a function of the request returning the bytes to send (``b""``: stay silent;
``None``: close the connection). The server counts what it receives, and tests wait on those
counts (:meth:`wait_for`), never on the clock.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from pvflow.ca import protocol
from pvflow.ca.protocol import Command, header
from pvflow.demo.network import free_port


@dataclass(frozen=True)
class Request:
    """One message a client sent on a circuit."""

    command: int
    data_type: int
    count: int
    p1: int
    p2: int
    payload: bytes

    @property
    def name(self) -> str:
        return self.payload.split(b"\0", 1)[0].decode()


Reaction = Callable[[Request], "bytes | None"]


def created(native: int = 6, count: int = 1) -> Reaction:
    """Answer CREATE_CHAN as an IOC does: full access rights, then the channel's type."""
    def react(request: Request) -> bytes:
        cid = request.p1
        return (header(Command.ACCESS_RIGHTS, 0, 0, 0, cid, 3)
                + header(Command.CREATE_CHAN, 0, native, count, cid, cid))
    return react


def double_value(value: float = 1.0) -> Reaction:
    """Answer READ_NOTIFY of a DBR_DOUBLE with ``value``."""
    def react(request: Request) -> bytes:
        return header(Command.READ_NOTIFY, 8, 6, 1, 1, request.p2) + struct.pack(">d", value)
    return react


class HostileCAServer:
    """Claims ``names``; ``reactions[command]`` decides what each request gets back."""

    def __init__(self, names: list[str], reactions: dict[int, Reaction] | None = None,
                 on_accept: Callable[[], bytes] | None = None):
        self.names = set(names)
        self.reactions: dict[int, Reaction] = {Command.CREATE_CHAN: created(),
                                                Command.READ_NOTIFY: double_value()}
        self.reactions.update(reactions or {})
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
        self._selector.register(self._udp, selectors.EVENT_READ, self._on_search)
        self._selector.register(self._tcp, selectors.EVENT_READ, self._on_accept)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="hostile-ca", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> HostileCAServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._wake_write.send(b"x")
        self._thread.join(5)
        for sock in [*self._clients, self._udp, self._tcp, self._wake_read, self._wake_write]:
            sock.close()
        self._selector.close()

    def __enter__(self) -> HostileCAServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[HostileCAServer], bool], timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self), timeout)

    def send_to_clients(self, data: bytes) -> None:
        """Push ``data`` unasked to every connected client (from the test's thread)."""
        for client in list(self._clients):
            client.sendall(data)

    # --- the server's thread ---------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(1.0):
                if key.data is not None:
                    key.data(key.fileobj)

    def _counted(self, update: Callable[[], None]) -> None:
        with self._condition:
            update()
            self._condition.notify_all()

    def _on_search(self, sock: socket.socket) -> None:
        data, sender = sock.recvfrom(65536)
        offset, replies = 0, []
        while True:
            parsed = protocol.read_header(data, offset, len(data))
            if parsed is None or parsed[6] > len(data):
                break
            command, _, _, cid, _, start, stop = parsed
            name = data[start:stop].split(b"\0", 1)[0].decode(errors="replace")
            if command == Command.SEARCH and name in self.names:
                self._counted(lambda: self.searches.update([name]))
                replies.append(header(Command.SEARCH, 8, self.port, 0, 0xFFFFFFFF, cid)
                               + struct.pack(">H6x", protocol.MINOR_VERSION))
            offset = stop
        if replies:
            sock.sendto(b"".join(replies), sender)

    def _on_accept(self, sock: socket.socket) -> None:
        client, _ = sock.accept()
        self._clients[client] = bytearray()
        self._selector.register(client, selectors.EVENT_READ, self._on_client)
        self._counted(lambda: setattr(self, "accepted", self.accepted + 1))
        client.sendall(protocol.version())
        if self.on_accept is not None:
            client.sendall(self.on_accept())

    def _on_client(self, client: socket.socket) -> None:
        try:
            data = client.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        buffer = self._clients[client]
        buffer += data
        offset = 0
        while True:
            parsed = protocol.read_header(buffer, offset, len(buffer))
            if parsed is None or parsed[6] > len(buffer):
                break
            command, data_type, count, p1, p2, start, stop = parsed
            request = Request(command, data_type, count, p1, p2, bytes(buffer[start:stop]))
            offset = stop
            self._counted(lambda: self.received.update([command]))
            reaction = self.reactions.get(command)
            answer = reaction(request) if reaction is not None else b""
            if answer is None:
                self._drop(client)
                return
            if answer:
                try:
                    client.sendall(answer)
                except OSError:
                    self._drop(client)
                    return
        del buffer[:offset]

    def _drop(self, client: socket.socket) -> None:
        self._selector.unregister(client)
        self._clients.pop(client, None)
        client.close()
