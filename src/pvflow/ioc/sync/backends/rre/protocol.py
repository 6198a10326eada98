"""RBP, the serial framing of Menlo Syncro devices: frames, escaping, CRC-16 (pure codec).

Codec layer inside the sync app: no I/O, no threads, no clock. It turns messages into bytes and
a byte stream back into messages, so it is tested with bytes alone; the serial client and the
protocol-level simulator both stand on it.

A frame on the wire is ``SOT (0x0d)``, the escaped body, ``EOT (0x0a)``. The body is
``destination, source, command, payload..., CRC`` where the CRC is CRC-16/XMODEM (polynomial
0x1021, initial value 0) of everything before it, big-endian. Escaping replaces each byte of
``{0x0a, 0x0d, 0x11, 0x13, 0x40, 0x5e}`` (EOT, SOT, XON, XOFF, 0x40, the escape byte itself)
with ``0x5e, byte + 0x40``, so SOT and EOT never occur inside a frame and software flow
control never sees XON/XOFF.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

SOT = 0x0D  # start of transmission
EOT = 0x0A  # end of transmission
XON = 0x11
XOFF = 0x13
ESCAPE_OFFSET = 0x40  # also a byte that must itself be escaped
ESCAPE = 0x5E  # start of an escape sequence
ESCAPED_BYTES = frozenset({EOT, SOT, XON, XOFF, ESCAPE_OFFSET, ESCAPE})

BROADCAST_ADDRESS = 0xFF  # the default source and destination of the Syncro tools
HEADER_LENGTH = 3  # destination, source, command
CRC_LENGTH = 2
# A body longer than this is garbage (a lost EOT): stop buffering and report it.
MAX_BODY_LENGTH = 4096


class Command(enum.IntEnum):
    """RBP command byte."""

    NACK = 0x00  # the device refused the request; the payload says why
    CRCERR = 0x01  # the device received a frame with a bad CRC
    ACK = 0x03  # a write succeeded
    READ = 0x04  # read a register (payload: its address)
    WRITE = 0x05  # write a register (payload: address, then data)
    DGRAM = 0x08  # the answer to a READ (payload: one address byte, then the data)
    ECHO = 0x09  # ask the device to send the payload back (at most 100 bytes)
    REPLY = 0x10  # the answer to an ECHO


class NackReason(enum.IntEnum):
    """Error codes a NACK carries (the HRT error table)."""

    SUCCESS = 0x0000
    BUFFER_OVERFLOW = 0x0001
    NOT_WRITABLE = 0x0002
    ARGSIZE_LOW = 0x0003
    ARGSIZE_HIGH = 0x0004
    INTERNAL_ERROR = 0x0005
    AUTHORIZATION_REQUIRED = 0x0006
    NOT_READABLE = 0x0007
    WRONG_ARGUMENT = 0x0008


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-16/XMODEM of ``data``: ``crc16(b"123456789") == 0x31C3``."""
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def escape(data: bytes | bytearray) -> bytes:
    """Replace every byte that may not appear inside a frame by its escape sequence."""
    out = bytearray()
    for byte in data:
        if byte in ESCAPED_BYTES:
            out.append(ESCAPE)
            out.append(byte + ESCAPE_OFFSET)
        else:
            out.append(byte)
    return bytes(out)


def unescape(data: bytes | bytearray) -> bytes:
    """Undo :func:`escape`; ValueError on a dangling or impossible escape sequence."""
    out = bytearray()
    pending = False
    for position, byte in enumerate(data):
        if pending:
            original = byte - ESCAPE_OFFSET
            if original not in ESCAPED_BYTES:
                raise ValueError(f"escape byte 0x5e followed by 0x{byte:02x} at offset "
                                 f"{position}: only escaped control bytes may follow it")
            out.append(original)
            pending = False
        elif byte == ESCAPE:
            pending = True
        else:
            out.append(byte)
    if pending:
        raise ValueError("frame ends inside an escape sequence")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Message:
    """One RBP message (the body of a frame without its CRC)."""

    destination: int
    source: int
    command: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        for name in ("destination", "source", "command"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise ValueError(f"{name} must be a byte (0..255), got {value!r}")
        if len(self.payload) > MAX_BODY_LENGTH - HEADER_LENGTH - CRC_LENGTH:
            raise ValueError(f"payload of {len(self.payload)} bytes is too long")

    @property
    def command_name(self) -> str:
        try:
            return Command(self.command).name
        except ValueError:
            return f"0x{self.command:02x}"

    def __str__(self) -> str:
        return (f"{self.command_name} {self.source:02x}->{self.destination:02x} "
                f"[{self.payload.hex(' ')}]")


@dataclass(frozen=True, slots=True)
class CorruptFrame:
    """A frame that could not be decoded; the stream goes on with the next SOT."""

    reason: str
    raw: bytes


def encode_body(message: Message) -> bytes:
    """Header, payload and CRC, unescaped."""
    body = bytes((message.destination, message.source, message.command)) + message.payload
    return body + crc16(body).to_bytes(2, "big")


def encode_frame(message: Message) -> bytes:
    """The bytes to write to the serial line for ``message``."""
    return bytes((SOT,)) + escape(encode_body(message)) + bytes((EOT,))


def decode_body(body: bytes) -> Message:
    """The message in an unescaped body; ValueError naming what is wrong (length, CRC)."""
    if len(body) < HEADER_LENGTH + CRC_LENGTH:
        raise ValueError(f"frame of {len(body)} bytes is shorter than header and CRC (5)")
    expected = crc16(body[:-CRC_LENGTH])
    received = int.from_bytes(body[-CRC_LENGTH:], "big")
    if expected != received:
        raise ValueError(f"CRC mismatch: frame says 0x{received:04x}, content gives "
                         f"0x{expected:04x}")
    return Message(body[0], body[1], body[2], bytes(body[HEADER_LENGTH:-CRC_LENGTH]))


def decode_frame(escaped_body: bytes) -> Message:
    """The message between an SOT and its EOT (both excluded)."""
    return decode_body(unescape(escaped_body))


class FrameDecoder:
    """Cuts a byte stream into messages, whatever the chunking (sans-I/O).

    ``receive(data)`` takes bytes as they arrive and returns the frames completed by them, as
    :class:`Message` or, for a damaged frame, :class:`CorruptFrame` (bad CRC, bad escape, too
    short, too long). Bytes outside a frame are skipped and counted in ``skipped_bytes``: a
    device that was mid-frame when we opened the port must not poison the stream.
    """

    def __init__(self, max_body_length: int = MAX_BODY_LENGTH) -> None:
        if max_body_length < HEADER_LENGTH + CRC_LENGTH:
            raise ValueError(f"max_body_length must be at least 5, got {max_body_length}")
        self.max_body_length = max_body_length
        self.skipped_bytes = 0
        self._buffer = bytearray()
        self._in_frame = False

    def receive(self, data: bytes | bytearray | memoryview) -> list[Message | CorruptFrame]:
        events: list[Message | CorruptFrame] = []
        for byte in bytes(data):
            if byte == SOT:
                if self._in_frame and self._buffer:
                    events.append(CorruptFrame("frame cut by a new SOT before its EOT",
                                               bytes(self._buffer)))
                self._buffer.clear()
                self._in_frame = True
            elif not self._in_frame:
                self.skipped_bytes += 1
            elif byte == EOT:
                raw = bytes(self._buffer)
                self._buffer.clear()
                self._in_frame = False
                try:
                    events.append(decode_frame(raw))
                except ValueError as error:
                    events.append(CorruptFrame(str(error), raw))
            else:
                self._buffer.append(byte)
                if len(self._buffer) > 2 * self.max_body_length:  # escaped: up to twice
                    events.append(CorruptFrame(
                        f"no EOT within {2 * self.max_body_length} bytes", bytes(self._buffer)))
                    self._buffer.clear()
                    self._in_frame = False
        return events

    def reset(self) -> None:
        """Forget a partial frame (after a reconnect)."""
        self._buffer.clear()
        self._in_frame = False


def nack_reason(message: Message) -> str:
    """Human-readable reason of a NACK (its payload's first two bytes, big-endian)."""
    if len(message.payload) < 2:
        return f"NACK without reason [{message.payload.hex(' ')}]"
    code = int.from_bytes(message.payload[:2], "big")
    try:
        return f"NACK {NackReason(code).name} (0x{code:04x})"
    except ValueError:
        return f"NACK 0x{code:04x}"


def nack_payload(reason: NackReason) -> bytes:
    """The payload of a NACK for ``reason`` (used by the simulator)."""
    return int(reason).to_bytes(2, "big")
