"""A Channel Access server that lies: it answers name searches on 127.0.0.1 like any IOC,
then does what the test tells it (bad types, lying sizes, garbage, floods, silence)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pvflow.ca import protocol
from pvflow.ca.protocol import Command, header
from tests.hostile.lying_server import LyingServer


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


class HostileCAServer(LyingServer):
    """Claims ``names``; ``reactions[command]`` decides what each request gets back."""

    def __init__(self, names: list[str], reactions: dict[int, Reaction] | None = None,
                 on_accept: Callable[[], bytes] | None = None):
        super().__init__(names, on_accept)
        self.reactions: dict[int, Reaction] = {Command.CREATE_CHAN: created(),
                                                Command.READ_NOTIFY: double_value()}
        self.reactions.update(reactions or {})

    def answer_search(self, data: bytes, sender: tuple[str, int]) -> None:
        offset, replies = 0, []
        while True:
            parsed = protocol.read_header(data, offset, len(data))
            if parsed is None or parsed[6] > len(data):
                break
            command, _, _, cid, _, start, stop = parsed
            name = data[start:stop].split(b"\0", 1)[0].decode(errors="replace")
            if command == Command.SEARCH and name in self.names:
                self.count(name=name)
                replies.append(header(Command.SEARCH, 8, self.port, 0, 0xFFFFFFFF, cid)
                               + struct.pack(">H6x", protocol.MINOR_VERSION))
            offset = stop
        if replies:
            self._udp.sendto(b"".join(replies), sender)

    def greeting(self) -> bytes:
        return protocol.version()

    def take_requests(self, buffer: bytearray, client: socket.socket) -> int | None:
        offset = 0
        while True:
            parsed = protocol.read_header(buffer, offset, len(buffer))
            if parsed is None or parsed[6] > len(buffer):
                return offset
            command, data_type, count, p1, p2, start, stop = parsed
            request = Request(command, data_type, count, p1, p2, bytes(buffer[start:stop]))
            offset = stop
            self.count(command)
            reaction = self.reactions.get(command)
            if not self.reply(client, reaction(request) if reaction is not None else b""):
                return None
