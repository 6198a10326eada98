"""pvAccess framing and messages: headers, sizes, strings, status, requests (codec layer, no I/O).

Every decoder takes ``(buffer, offset, order)`` and returns ``(value, new offset)``; ``order``
is ``"<"`` or ``">"``, from the byte-order flag of the header that carried the payload (each
peer writes in its own order: pvxs in host order, pvAccessCPP servers too). Encoders are plain
functions returning bytes; pvflow always writes little-endian and says so in every header.
Malformed input surfaces as ``struct.error``/``IndexError``/``UnicodeDecodeError`` or
:class:`~pvflow.errors.RemoteProtocolError`; the circuit turns all of them into the latter.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ..errors import RemoteProtocolError

MAGIC = 0xCA
VERSION = 2  # pvxs speaks 2; pvAccessCPP 1 and 2 alike accept it
HEADER_SIZE = 8
DEFAULT_SERVER_PORT = 5075
DEFAULT_BROADCAST_PORT = 5076


class Flag:
    CONTROL = 0x01
    SEGMENT_MASK = 0x30
    SEGMENT_FIRST = 0x10
    SEGMENT_LAST = 0x20
    SEGMENT_MIDDLE = 0x30
    SERVER = 0x40
    BIG_ENDIAN = 0x80


class Command(IntEnum):
    BEACON = 0
    CONNECTION_VALIDATION = 1
    ECHO = 2
    SEARCH = 3
    SEARCH_RESPONSE = 4
    AUTHNZ = 5
    ACL_CHANGE = 6
    CREATE_CHANNEL = 7
    DESTROY_CHANNEL = 8
    CONNECTION_VALIDATED = 9
    GET = 10
    PUT = 11
    PUT_GET = 12
    MONITOR = 13
    ARRAY = 14
    DESTROY_REQUEST = 15
    PROCESS = 16
    GET_FIELD = 17
    MESSAGE = 18
    MULTIPLE_DATA = 19
    RPC = 20
    CANCEL_REQUEST = 21
    ORIGIN_TAG = 22


class Control(IntEnum):
    SET_MARKER = 0
    ACK_MARKER = 1
    SET_BYTE_ORDER = 2
    ECHO_REQUEST = 3
    ECHO_RESPONSE = 4


class Sub:
    """Sub-command bits of GET/PUT/MONITOR/RPC."""

    EXEC = 0x00
    START = 0x04  # monitor: with GET (0x44) start, alone stop
    INIT = 0x08
    DESTROY = 0x10
    GET = 0x40
    PIPELINE = 0x80  # monitor INIT: flow control; alone: an ack of N updates


HEADER = struct.Struct("<BBBBI")
_STRUCTS: dict[str, struct.Struct] = {}


def packer(order: str, code: str) -> struct.Struct:
    """A cached ``struct.Struct`` of ``code`` in byte ``order``."""
    key = order + code
    found = _STRUCTS.get(key)
    if found is None:
        found = _STRUCTS[key] = struct.Struct(key)
    return found


_U8 = struct.Struct("B")
_U32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_U16 = {"<": struct.Struct("<H"), ">": struct.Struct(">H")}
_I32 = {"<": struct.Struct("<i"), ">": struct.Struct(">i")}


def header(command: int, size: int, flags: int = 0) -> bytes:
    return HEADER.pack(MAGIC, VERSION, flags, command, size)


def message(command: int, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, VERSION, 0, command, len(payload)) + payload


def read_header(buffer: Any, offset: int) -> tuple[int, int, int, str]:
    """``(flags, command, payload size, byte order)`` of the header at ``offset``."""
    magic, _version, flags, command, size = HEADER.unpack_from(buffer, offset)
    if magic != MAGIC:
        raise RemoteProtocolError(f"not a pvAccess header (first byte 0x{magic:02x})")
    if flags & Flag.BIG_ENDIAN and not flags & Flag.CONTROL:
        size = int.from_bytes(size.to_bytes(4, "little"), "big")
    return flags, command, size, ">" if flags & Flag.BIG_ENDIAN else "<"


# --- sizes, strings, status -----------------------------------------------------------------------
def read_size(buffer: Any, offset: int, order: str) -> tuple[int, int]:
    """A pvData size: one byte below 254, 254 then a uint32, or 255 for "null" (-1)."""
    first = buffer[offset]
    if first < 254:
        return first, offset + 1
    if first == 255:
        return -1, offset + 1
    return _U32[order].unpack_from(buffer, offset + 1)[0], offset + 5


def write_size(size: int) -> bytes:
    if size < 0:
        return b"\xff"
    if size < 254:
        return bytes((size,))
    return b"\xfe" + _U32["<"].pack(size)


def read_string(buffer: Any, offset: int, order: str) -> tuple[str, int]:
    first = buffer[offset]
    if first < 254:
        size, offset = first, offset + 1
    elif first == 255:
        return "", offset + 1
    else:
        size, offset = _U32[order].unpack_from(buffer, offset + 1)[0], offset + 5
    end = offset + size
    if end > len(buffer):
        raise RemoteProtocolError(f"a {size}-byte string runs past the end of its message")
    return str(buffer[offset:end], "utf-8"), end


def write_string(text: str) -> bytes:
    data = text.encode()
    size = len(data)
    if size < 254:
        return bytes((size,)) + data
    return b"\xfe" + _U32["<"].pack(size) + data


@dataclass(frozen=True, slots=True)
class Status:
    """A non-OK status (OK is ``None`` on the wire as one 0xFF byte and here)."""

    code: int  # 0 OK, 1 warning, 2 error, 3 fatal
    message: str
    call_tree: str = ""

    @property
    def success(self) -> bool:
        return self.code in (0, 1)


def read_status(buffer: Any, offset: int, order: str) -> tuple[Status | None, int]:
    code = buffer[offset]
    if code == 0xFF:
        return None, offset + 1
    text, offset = read_string(buffer, offset + 1, order)
    tree, offset = read_string(buffer, offset, order)
    return Status(code, text, tree), offset


def write_status(status: Status | None) -> bytes:
    if status is None:
        return b"\xff"
    return bytes((status.code,)) + write_string(status.message) + write_string(status.call_tree)


# --- addresses ------------------------------------------------------------------------------------
_IPV4_MAPPED = b"\0" * 10 + b"\xff\xff"


def read_address(buffer: Any, offset: int) -> tuple[str | None, int]:
    """A 16-byte IPv6 address as IPv4 text (``None`` for the wildcard: "use the sender")."""
    raw = bytes(buffer[offset:offset + 16])
    if len(raw) != 16:
        raise RemoteProtocolError("truncated address")
    if raw[:12] == _IPV4_MAPPED:  # in every search answer: formatted without ipaddress
        host = f"{raw[12]}.{raw[13]}.{raw[14]}.{raw[15]}"
        return (None if host == "0.0.0.0" else host), offset + 16
    if raw == b"\0" * 16:
        return None, offset + 16
    return str(ipaddress.IPv6Address(raw)), offset + 16


def write_address(host: str | None) -> bytes:
    if not host:
        return b"\0" * 16
    return b"\0" * 10 + b"\xff\xff" + ipaddress.IPv4Address(host).packed


# --- client requests ------------------------------------------------------------------------------
def search(sequence: int, reply_port: int, channels: list[tuple[int, str]],
           unicast: bool = True) -> bytes:
    """A SEARCH for ``(cid, name)`` pairs; the reply goes to the sender's address and
    ``reply_port`` (pvxs servers take the wildcard address to mean "where it came from")."""
    body = [struct.pack("<IB3x", sequence, 0x80 if unicast else 0x00),
            write_address(None), struct.pack("<H", reply_port), b"\x01\x03tcp",
            struct.pack("<H", len(channels))]
    pack_cid = _U32["<"].pack
    for cid, name in channels:
        body.append(pack_cid(cid))
        body.append(write_string(name))
    return message(Command.SEARCH, b"".join(body))


def search_payload_size(name: str) -> int:
    """The bytes ``name`` takes in a SEARCH: its cid and its string (asked once per name per
    send, so counted without encoding an ASCII name)."""
    size = len(name) if name.isascii() else len(name.encode())
    return (5 if size < 254 else 9) + size


SEARCH_OVERHEAD = HEADER_SIZE + 8 + 16 + 2 + 5 + 2


def validation_reply(user: str, host: str, methods: list[str]) -> bytes:
    """The client's CONNECTION_VALIDATION: buffer size, registry size, QoS, auth method and
    its credentials ("ca": a structure of user and host, as pvxs and pvAccessCPP send)."""
    body = struct.pack("<IHH", 0x10000, 0x7FFF, 0)
    if "ca" in methods:
        credentials = (b"\x80\x00\x02" + write_string("user") + b"\x60" + write_string("host")
                       + b"\x60" + write_string(user) + write_string(host))
        return message(Command.CONNECTION_VALIDATION, body + write_string("ca") + credentials)
    return message(Command.CONNECTION_VALIDATION, body + write_string("anonymous") + b"\xff")


_CREATE_HEAD = struct.Struct("<BBBBIHI")


def create_channel(channels: list[tuple[int, str]]) -> bytes:
    # One channel per message, as pvxs and pvAccessCPP clients send them: a server may answer
    # only the first of a multi-channel request.
    parts = []
    for cid, name in channels:
        text = write_string(name)
        parts.append(_CREATE_HEAD.pack(MAGIC, VERSION, 0, Command.CREATE_CHANNEL, 6 + len(text),
                                       1, cid))
        parts.append(text)
    return b"".join(parts)


def destroy_channel(sid: int, cid: int) -> bytes:
    return message(Command.DESTROY_CHANNEL, struct.pack("<II", sid, cid))


def operation_init(command: int, sid: int, ioid: int, request: bytes, sub: int = Sub.INIT,
                   queue_size: int | None = None) -> bytes:
    """INIT of a GET/PUT/MONITOR/RPC with its pvRequest (type and value, already encoded)."""
    tail = struct.pack("<I", queue_size) if queue_size is not None else b""
    return message(command, struct.pack("<IIB", sid, ioid, sub) + request + tail)


_EXEC = struct.Struct("<BBBBIIIB")


def operation_exec(command: int, sid: int, ioid: int, sub: int = Sub.EXEC,
                   body: bytes = b"") -> bytes:
    return _EXEC.pack(MAGIC, VERSION, 0, command, 9 + len(body), sid, ioid, sub) + body


def monitor_ack(sid: int, ioid: int, count: int) -> bytes:
    return operation_exec(Command.MONITOR, sid, ioid, Sub.PIPELINE, struct.pack("<I", count))


def destroy_request(sid: int, ioid: int) -> bytes:
    return message(Command.DESTROY_REQUEST, struct.pack("<II", sid, ioid))


def get_field(sid: int, ioid: int, field: str = "") -> bytes:
    return message(Command.GET_FIELD, struct.pack("<II", sid, ioid) + write_string(field))


def echo(payload: bytes = b"") -> bytes:
    return message(Command.ECHO, payload)


# --- UDP messages from servers --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SearchResponse:
    guid: bytes
    sequence: int
    host: str
    port: int
    protocol: str
    found: bool
    cids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Beacon:
    guid: bytes
    sequence: int
    change: int
    host: str
    port: int
    protocol: str


def read_search_response(buffer: Any, offset: int, order: str, sender: str
                         ) -> tuple[SearchResponse, int]:
    guid = bytes(buffer[offset:offset + 12])
    (sequence,) = _U32[order].unpack_from(buffer, offset + 12)
    host, offset = read_address(buffer, offset + 16)
    (port,) = _U16[order].unpack_from(buffer, offset)
    protocol, offset = read_string(buffer, offset + 2, order)
    found = bool(buffer[offset])
    (count,) = _U16[order].unpack_from(buffer, offset + 1)
    offset += 3
    cids = packer(order, f"{count}I").unpack_from(buffer, offset)
    return SearchResponse(guid, sequence, host or sender, port, protocol, found, cids), \
        offset + 4 * count


def read_beacon(buffer: Any, offset: int, order: str, sender: str) -> tuple[Beacon, int]:
    guid = bytes(buffer[offset:offset + 12])
    sequence = buffer[offset + 13]
    (change,) = _U16[order].unpack_from(buffer, offset + 14)
    host, offset = read_address(buffer, offset + 16)
    (port,) = _U16[order].unpack_from(buffer, offset)
    protocol, offset = read_string(buffer, offset + 2, order)
    return Beacon(guid, sequence, change, host or sender, port, protocol), offset


def decode_datagram(data: bytes, sender: str) -> list[SearchResponse | Beacon]:
    """Every search response and beacon in one datagram; anything else is skipped."""
    found: list[SearchResponse | Beacon] = []
    offset = 0
    while len(data) - offset >= HEADER_SIZE:
        flags, command, size, order = read_header(data, offset)
        start = offset + HEADER_SIZE
        offset = start + (0 if flags & Flag.CONTROL else size)
        if offset > len(data):
            raise RemoteProtocolError(f"datagram from {sender} is truncated")
        if command == Command.SEARCH_RESPONSE:
            found.append(read_search_response(data, start, order, sender)[0])
        elif command == Command.BEACON:
            found.append(read_beacon(data, start, order, sender)[0])
    return found
