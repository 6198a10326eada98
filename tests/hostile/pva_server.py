"""A pvAccess server that lies: it answers name searches and the connection handshake like
pvxs, then does what the test tells it (garbage, lying sizes, unasked replies, silence)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pvflow.pva import protocol
from pvflow.pva.protocol import HEADER, HEADER_SIZE, Command, read_size, read_string
from pvflow.pva.pvdata import FieldType, structure, write_bitset, write_type, write_value
from tests.hostile.lying_server import LyingServer

SERVER = 0x40
OK = b"\xff"
DOUBLE_TYPE = structure("epics:nt/NTScalar:1.0", value=FieldType(0x43),
                        alarm=structure("alarm_t", severity=FieldType(0x22),
                                        status=FieldType(0x22), message=FieldType(0x60)))


def message(command: int, payload: bytes, flags: int = SERVER) -> bytes:
    return HEADER.pack(protocol.MAGIC, 2, flags, command, len(payload)) + payload


@dataclass(frozen=True)
class Request:
    command: int
    payload: bytes

    @property
    def ids(self) -> tuple[int, int, int]:
        """``(sid, ioid, sub)`` of an operation request."""
        sid, ioid = struct.unpack_from("<II", self.payload)
        return sid, ioid, self.payload[8] if len(self.payload) > 8 else 0


Reaction = Callable[[Request], "bytes | None"]


def created(request: Request) -> bytes:
    """CREATE_CHANNEL: the channel gets sid = cid."""
    (cid,) = struct.unpack_from("<I", request.payload, 2)
    return message(Command.CREATE_CHANNEL, struct.pack("<II", cid, cid) + OK)


def double_get(value: float = 1.0) -> Reaction:
    """GET: the INIT is answered with an NTScalar double, each EXEC with ``value``."""
    def react(request: Request) -> bytes:
        _, ioid, sub = request.ids
        if sub & 0x08:
            return message(Command.GET, struct.pack("<IB", ioid, sub) + OK
                           + write_type(DOUBLE_TYPE))
        if sub & 0x10:  # destroy
            return b""
        body = write_value(DOUBLE_TYPE, {"value": value, "alarm": {"message": ""}})
        return message(Command.GET, struct.pack("<IB", ioid, sub) + OK + write_bitset([0])
                       + body)
    return react


class HostilePVAServer(LyingServer):
    """Claims ``names``; ``reactions[command]`` decides what each request gets back."""

    def __init__(self, names: list[str], reactions: dict[int, Reaction] | None = None,
                 on_accept: Callable[[], bytes] | None = None):
        super().__init__(names, on_accept)
        self.reactions: dict[int, Reaction] = {
            Command.CONNECTION_VALIDATION: lambda request: message(
                Command.CONNECTION_VALIDATED, OK),
            Command.CREATE_CHANNEL: created, Command.GET: double_get(),
            Command.ECHO: lambda request: message(Command.ECHO, request.payload)}
        self.reactions.update(reactions or {})

    def answer_search(self, data: bytes, sender: tuple[str, int]) -> None:
        if len(data) < HEADER_SIZE + 26 or data[3] != Command.SEARCH:
            return
        offset = HEADER_SIZE
        (sequence,) = struct.unpack_from("<I", data, offset)
        (reply_port,) = struct.unpack_from("<H", data, offset + 24)
        count, offset = read_size(data, offset + 26, "<")
        for _ in range(count):
            _, offset = read_string(data, offset, "<")
        (channels,) = struct.unpack_from("<H", data, offset)
        offset += 2
        ours = []
        for _ in range(channels):
            (cid,) = struct.unpack_from("<I", data, offset)
            name, offset = read_string(data, offset + 4, "<")
            if name in self.names:
                self.count(name=name)
                ours.append(cid)
        if ours:
            payload = (bytes(12) + struct.pack("<I", sequence) + bytes(16)
                       + struct.pack("<H", self.port) + b"\x03tcp" + b"\x01"
                       + struct.pack(f"<H{len(ours)}I", len(ours), *ours))
            self._udp.sendto(message(Command.SEARCH_RESPONSE, payload),
                             (sender[0], reply_port or sender[1]))

    def greeting(self) -> bytes:
        set_byte_order = HEADER.pack(protocol.MAGIC, 2, SERVER | 0x01, 2, 0)
        return set_byte_order + message(Command.CONNECTION_VALIDATION,
                                        struct.pack("<IH", 0x10000, 0x7FFF) + b"\x01"
                                        + b"\x09anonymous")

    def take_requests(self, buffer: bytearray, client: socket.socket) -> int | None:
        offset = 0
        while len(buffer) - offset >= HEADER_SIZE:
            _, _, flags, command, size = HEADER.unpack_from(buffer, offset)
            if flags & 0x01:  # control: no payload
                offset += HEADER_SIZE
                continue
            stop = offset + HEADER_SIZE + size
            if stop > len(buffer):
                break
            request = Request(command, bytes(buffer[offset + HEADER_SIZE:stop]))
            offset = stop
            self.count(command)
            reaction = self.reactions.get(command)
            if not self.reply(client, reaction(request) if reaction is not None else b""):
                return None
        return offset
