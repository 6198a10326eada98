"""Channel Access message framing (codec layer: pure, no sockets, threads or asyncio).

Decoding never slices: :func:`read_header` takes a buffer and an offset and returns where the
payload sits, so a circuit parses a whole receive buffer with one pass and compacts it once.
Encoders are plain functions returning ``bytes``; a bulk call joins many of them into one send.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

# CA protocol minor version we speak (4.13: dynamic array sizes, search over TCP).
MINOR_VERSION = 13
DEFAULT_SERVER_PORT = 5064
DEFAULT_REPEATER_PORT = 5065
EPICS_EPOCH = 631152000  # POSIX time of 1990-01-01, the EPICS epoch

HEADER = struct.Struct(">HHHHII")
EXTENDED_SIZES = struct.Struct(">II")
HEADER_SIZE = HEADER.size
EXTENDED_HEADER_SIZE = HEADER.size + EXTENDED_SIZES.size
_SEARCH_REPLY_PAYLOAD = struct.Struct(">H")
_EVENT_ADD_PAYLOAD = struct.Struct(">fffHH")
_unpack_header = HEADER.unpack_from
_unpack_extended = EXTENDED_SIZES.unpack_from
_pack_header = HEADER.pack


class Command(IntEnum):
    VERSION = 0
    EVENT_ADD = 1
    EVENT_CANCEL = 2
    READ = 3
    WRITE = 4
    SEARCH = 6
    EVENTS_OFF = 8
    EVENTS_ON = 9
    READ_SYNC = 10
    ERROR = 11
    CLEAR_CHANNEL = 12
    BEACON = 13
    NOT_FOUND = 14
    READ_NOTIFY = 15
    REPEATER_CONFIRM = 17
    CREATE_CHAN = 18
    WRITE_NOTIFY = 19
    CLIENT_NAME = 20
    HOST_NAME = 21
    ACCESS_RIGHTS = 22
    ECHO = 23
    REPEATER_REGISTER = 24
    CREATE_CH_FAIL = 26
    SERVER_DISCONN = 27


# plain ints for the datagram loop: comparing with an IntEnum member goes through the enum
_SEARCH, _BEACON, _REPEATER_CONFIRM = int(Command.SEARCH), int(Command.BEACON), \
    int(Command.REPEATER_CONFIRM)
_CREATE_CHAN = int(Command.CREATE_CHAN)


class Monitor(IntEnum):
    """Event masks for EVENT_ADD (DBE_* in EPICS base)."""

    VALUE = 1
    LOG = 2
    ALARM = 4
    PROPERTY = 8


class AccessRights(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    READ_WRITE = 3


# Search reply flags carried in the data_type field of a SEARCH request.
DO_REPLY = 10
DONT_REPLY = 5

# ECA status codes as they travel on the wire (number << 3 | severity): code -> (name, text).
ECA_NORMAL = 1
ECA_MESSAGES: dict[int, tuple[str, str]] = {
    1: ("ECA_NORMAL", 'Normal successful completion'),
    10: ("ECA_MAXIOC", 'Maximum simultaneous IOC connections exceeded'),
    18: ("ECA_UKNHOST", 'Unknown internet host'),
    26: ("ECA_UKNSERV", 'Unknown internet service'),
    34: ("ECA_SOCK", 'Unable to allocate a new socket'),
    40: ("ECA_CONN", 'Unable to connect to internet host or service'),
    48: ("ECA_ALLOCMEM", 'Unable to allocate additional dynamic memory'),
    56: ("ECA_UKNCHAN", 'Unknown IO channel'),
    64: ("ECA_UKNFIELD", 'Record field specified inappropriate for channel specified'),
    72: ("ECA_TOLARGE", 'The requested data transfer is greater than available memory or EPICS_CA_MAX_ARRAY_BYTES'),
    80: ("ECA_TIMEOUT", 'User specified timeout on IO operation expired'),
    88: ("ECA_NOSUPPORT", 'Sorry, that feature is planned but not supported at this time'),
    96: ("ECA_STRTOBIG", 'The supplied string is unusually large'),
    106: ("ECA_DISCONNCHID", 'The request was ignored because the specified channel is disconnected'),
    114: ("ECA_BADTYPE", 'The data type specifed is invalid'),
    123: ("ECA_CHIDNOTFND", 'Remote Channel not found'),
    131: ("ECA_CHIDRETRY", 'Unable to locate all user specified channels'),
    142: ("ECA_INTERNAL", 'Channel Access Internal Failure'),
    144: ("ECA_DBLCLFAIL", 'The requested local DB operation failed'),
    152: ("ECA_GETFAIL", 'Channel read request failed'),
    160: ("ECA_PUTFAIL", 'Channel write request failed'),
    168: ("ECA_ADDFAIL", 'Channel subscription request failed'),
    176: ("ECA_BADCOUNT", 'Invalid element count requested'),
    186: ("ECA_BADSTR", 'Invalid string'),
    192: ("ECA_DISCONN", 'Virtual circuit disconnect'),
    200: ("ECA_DBLCHNL", 'Identical process variable name on multiple servers'),
    210: ("ECA_EVDISALLOW", 'Request inappropriate within subscription (monitor) update callback'),
    216: ("ECA_BUILDGET", 'Database value get for that channel failed during channel search'),
    224: ("ECA_NEEDSFP", 'Unable to initialize without the vxWorks VX_FP_TASKtask option set'),
    232: ("ECA_OVEVFAIL", 'Event queue overflow has prevented first pass event after event add'),
    242: ("ECA_BADMONID", 'Bad event subscription (monitor) identifier'),
    248: ("ECA_NEWADDR", 'Remote channel has new network address'),
    259: ("ECA_NEWCONN", 'New or resumed network connection'),
    264: ("ECA_NOCACTX", 'Specified task isnt a member of a CA context'),
    278: ("ECA_DEFUNCT", 'Attempt to use defunct CA feature failed'),
    280: ("ECA_EMPTYSTR", 'The supplied string is empty'),
    288: ("ECA_NOREPEATER", 'Unable to spawn the CA repeater thread; auto reconnect will fail'),
    296: ("ECA_NOCHANMSG", 'No channel id match for search reply; search reply ignored'),
    304: ("ECA_DLCKREST", 'Reseting dead connection; will try to reconnect'),
    312: ("ECA_SERVBEHIND", 'Server (IOC) has fallen behind or is not responding; still waiting'),
    320: ("ECA_NOCAST", 'No internet interface with broadcast available'),
    330: ("ECA_BADMASK", 'Invalid event selection mask'),
    339: ("ECA_IODONE", 'IO operations have completed'),
    347: ("ECA_IOINPROGRESS", 'IO operations are in progress'),
    354: ("ECA_BADSYNCGRP", 'Invalid synchronous group identifier'),
    362: ("ECA_PUTCBINPROG", 'Put callback timed out'),
    368: ("ECA_NORDACCESS", 'Read access denied'),
    376: ("ECA_NOWTACCESS", 'Write access denied'),
    386: ("ECA_ANACHRONISM", 'Requested feature is no longer supported'),
    392: ("ECA_NOSEARCHADDR", 'Empty PV search address list'),
    400: ("ECA_NOCONVERT", 'No reasonable data conversion between client and server types'),
    410: ("ECA_BADCHID", 'Invalid channel identifier'),
    418: ("ECA_BADFUNCPTR", 'Invalid function pointer'),
    424: ("ECA_ISATTACHED", 'Thread is already attached to a client context'),
    432: ("ECA_UNAVAILINSERV", 'Not supported by attached service'),
    440: ("ECA_CHANDESTROY", 'User destroyed channel'),
    450: ("ECA_BADPRIORITY", 'Invalid channel priority'),
    458: ("ECA_NOTTHREADED", 'Preemptive callback not enabled - additional threads may not join context'),
    464: ("ECA_16KARRAYCLIENT", 'Client’s protocol revision does not support transfers exceeding 16k bytes'),
    472: ("ECA_CONNSEQTMO", 'Virtual circuit connection sequence aborted'),
    480: ("ECA_UNRESPTMO", 'Virtual circuit unresponsive'),
}


def describe_status(code: int) -> str:
    name, message = ECA_MESSAGES.get(code, (f"ECA code {code}", "unknown status"))
    return f"{name}: {message}"


def read_header(buffer: bytes | bytearray | memoryview, offset: int, end: int
                ) -> tuple[int, int, int, int, int, int, int] | None:
    """Read the header at ``offset``: ``(command, data_type, count, p1, p2, payload_start,
    payload_end)``, or ``None`` while fewer bytes than a whole header are available.

    The payload may extend past ``end`` (not yet received); the caller checks ``payload_end``.
    """
    if end - offset < HEADER_SIZE:
        return None
    command, size, data_type, count, p1, p2 = _unpack_header(buffer, offset)
    if size == 0xFFFF and count == 0:
        if end - offset < EXTENDED_HEADER_SIZE:
            return None
        size, count = _unpack_extended(buffer, offset + HEADER_SIZE)
        start = offset + EXTENDED_HEADER_SIZE
    else:
        start = offset + HEADER_SIZE
    return command, data_type, count, p1, p2, start, start + size


def header(command: int, payload_size: int, data_type: int, count: int, p1: int, p2: int) -> bytes:
    """Encode a header, extended when size or count does not fit 16 bits."""
    if payload_size >= 0xFFFF or count >= 0xFFFF:
        return _pack_header(command, 0xFFFF, data_type, 0, p1, p2) + EXTENDED_SIZES.pack(
            payload_size, count)
    return _pack_header(command, payload_size, data_type, count, p1, p2)


def pad_string(text: str | bytes) -> bytes:
    """NUL-terminate and pad to a multiple of 8, as CA requires for names and payloads."""
    data = text.encode() if isinstance(text, str) else text
    return data.ljust((len(data) + 8) & ~7, b"\0")


def pad_payload(payload: bytes) -> bytes:
    return payload + b"\0" * (-len(payload) % 8)


# --- requests a client sends ------------------------------------------------------------------

def version(priority: int = 0) -> bytes:
    return _pack_header(Command.VERSION, 0, priority, MINOR_VERSION, 0, 0)


def host_name(name: str) -> bytes:
    payload = pad_string(name)
    return header(Command.HOST_NAME, len(payload), 0, 0, 0, 0) + payload


def client_name(name: str) -> bytes:
    payload = pad_string(name)
    return header(Command.CLIENT_NAME, len(payload), 0, 0, 0, 0) + payload


def search(name: str | bytes, cid: int, reply: int = DONT_REPLY) -> bytes:
    """``name`` as text, or already padded by :func:`pad_string` (channels keep theirs)."""
    payload = name if isinstance(name, bytes) else pad_string(name)  # never past 16 bits
    return _pack_header(_SEARCH, len(payload), reply, MINOR_VERSION, cid, cid) + payload


def create_channel(name: str | bytes, cid: int) -> bytes:
    payload = name if isinstance(name, bytes) else pad_string(name)  # never past 16 bits
    return _pack_header(_CREATE_CHAN, len(payload), 0, 0, cid, MINOR_VERSION) + payload


def clear_channel(sid: int, cid: int) -> bytes:
    return _pack_header(Command.CLEAR_CHANNEL, 0, 0, 0, sid, cid)


def read_notify(data_type: int, count: int, sid: int, ioid: int) -> bytes:
    if count >= 0xFFFF:
        return header(Command.READ_NOTIFY, 0, data_type, count, sid, ioid)
    return _pack_header(Command.READ_NOTIFY, 0, data_type, count, sid, ioid)


_HEADER_DTYPE = np.dtype([("command", ">u2"), ("size", ">u2"), ("data_type", ">u2"),
                          ("count", ">u2"), ("p1", ">u4"), ("p2", ">u4")])


def read_notify_frames(data_types: Sequence[int], counts: Sequence[int],
                       sids: Sequence[int]) -> np.ndarray:
    """READ_NOTIFY frames for many channels as a structured array; :func:`with_ioids` numbers
    them. Counts must fit 16 bits (bulk reads ask for 1, or 0 = "current length")."""
    frames = np.empty(len(sids), _HEADER_DTYPE)
    frames["command"] = Command.READ_NOTIFY
    frames["size"] = 0
    frames["data_type"] = data_types
    frames["count"] = counts
    frames["p1"] = sids
    return frames


def with_ioids(frames: np.ndarray, first_ioid: int) -> bytes:
    """The bytes of ``frames`` with consecutive ioids from ``first_ioid``."""
    numbered = frames.copy()
    numbered["p2"] = np.arange(first_ioid, first_ioid + len(frames), dtype=np.uint32)
    return numbered.tobytes()


def write(data_type: int, count: int, sid: int, ioid: int, payload: bytes) -> bytes:
    return header(Command.WRITE, len(payload), data_type, count, sid, ioid) + payload


def write_notify(data_type: int, count: int, sid: int, ioid: int, payload: bytes) -> bytes:
    return header(Command.WRITE_NOTIFY, len(payload), data_type, count, sid, ioid) + payload


def event_add(data_type: int, count: int, sid: int, subscription_id: int, mask: int) -> bytes:
    payload = _EVENT_ADD_PAYLOAD.pack(0.0, 0.0, 0.0, mask, 0)
    return header(Command.EVENT_ADD, len(payload), data_type, count, sid, subscription_id) + payload


def event_cancel(data_type: int, count: int, sid: int, subscription_id: int) -> bytes:
    return header(Command.EVENT_CANCEL, 0, data_type, count, sid, subscription_id)


def echo() -> bytes:
    return _pack_header(Command.ECHO, 0, 0, 0, 0, 0)


def events_on() -> bytes:
    return _pack_header(Command.EVENTS_ON, 0, 0, 0, 0, 0)


def repeater_register(client_address: int = 0) -> bytes:
    return _pack_header(Command.REPEATER_REGISTER, 0, 0, 0, 0, client_address)


# --- UDP datagrams a client receives ------------------------------------------------------------

class SearchResponse(NamedTuple):
    """A server answered a name search: the channel ``cid`` lives at ``host:port``.

    A NamedTuple, not a frozen dataclass: one is built per channel on the connect path, and
    building a frozen dataclass costs twice as much (0.7 µs against 0.33 µs measured).
    """

    cid: int
    host: str
    port: int
    server_version: int


@dataclass(frozen=True, slots=True)
class Beacon:
    """A server announced itself (directly or through a CA repeater)."""

    host: str
    port: int
    beacon_id: int


@dataclass(frozen=True, slots=True)
class RepeaterConfirm:
    """The CA repeater accepted our registration."""


def ip_from_int(value: int) -> str:
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


_make_tuple = tuple.__new__


def decode_datagram(data: bytes, sender_host: str
                    ) -> list[SearchResponse | Beacon | RepeaterConfirm]:
    """Decode one UDP datagram; anything not meant for a client (or malformed) is skipped.

    A truncated datagram yields the messages before the damage: UDP is best effort and a broken
    datagram from one server must not cost the replies of the others. A server answers a
    thousand names in a dozen datagrams, so the common header is read inline here.
    """
    messages: list[SearchResponse | Beacon | RepeaterConfirm] = []
    answer = _make_tuple  # SearchResponse(...) is a Python-level __new__: twice the cost
    offset, end = 0, len(data)
    while end - offset >= HEADER_SIZE:
        command, size, data_type, count, p1, p2 = _unpack_header(data, offset)
        if size == 0xFFFF and count == 0:
            parsed = read_header(data, offset, end)
            if parsed is None:
                return messages
            command, data_type, count, p1, p2, start, stop = parsed
        else:
            start = offset + HEADER_SIZE
            stop = start + size
        if stop > end:
            return messages
        if command == _SEARCH and stop - start >= 2:
            host = sender_host if p1 in (0xFFFFFFFF, 0) else ip_from_int(p1)
            messages.append(answer(SearchResponse, (
                p2, host, data_type, _SEARCH_REPLY_PAYLOAD.unpack_from(data, start)[0])))
        elif command == _BEACON:
            host = sender_host if p2 == 0 else ip_from_int(p2)
            messages.append(Beacon(host, count, p1))
        elif command == _REPEATER_CONFIRM:
            messages.append(RepeaterConfirm())
        offset = stop
    return messages
