"""HRT, the hierarchical register tree of Menlo Syncro devices (pure codec over RBP messages).

Codec layer inside the sync app: no I/O. A register is addressed by a byte path: the node path
from the root, then the register id (``LOCKBOX`` -> ``PID`` -> ``Status`` might be ``05 02
01``). Every node describes itself through three introspection registers whose id comes
*first*, before the node path:

- ``0xfd + node``: RegVers, the register-tree version;
- ``0xfe + node``: Subregs, the ids of the node's entries (one byte each);
- ``0xff + node + id``: RegDef of entry ``id``: type byte, label, NUL, access byte
  (0: none (a node), 1: rw, 2: r, 3: w).

A READ is answered by a DGRAM whose payload is one address byte followed by the register's
data; the data is a sequence of the type's fixed-size struct. Labels are compared after the
CamelCase mangling the Syncro tools apply (alphanumerics only, each word capitalised).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .protocol import BROADCAST_ADDRESS, Command, Message

REGISTER_VERSION = 0xFD
SUBREGISTERS = 0xFE
REGISTER_DEFINITION = 0xFF


class RegisterType(enum.IntEnum):
    """HRT data types this package decodes (ids of the HRT specification)."""

    NONE = 0x01
    NODE = 0x02
    REGVERS = 0x03
    SUBREGS = 0x04
    REGDEF = 0x05
    ADDRESS = 0x07
    TYPE = 0x08
    SERIAL = 0x09
    TIMESTAMP = 0x0D
    DEVICE_ID = 0x0F
    VERSION = 0x10
    U8_ENUM = 0x55
    U8_BOOL = 0x56
    S32 = 0x58
    U16 = 0x81


# struct format of one item of each type; None: variable-length bytes (decoded specially)
ITEM_FORMATS: dict[RegisterType, str | None] = {
    RegisterType.NONE: None,
    RegisterType.NODE: None,
    RegisterType.REGVERS: "B",
    RegisterType.SUBREGS: "B",
    RegisterType.REGDEF: None,
    RegisterType.ADDRESS: "B",
    RegisterType.TYPE: "<H",
    RegisterType.SERIAL: "<BBH",
    RegisterType.TIMESTAMP: "<LH",
    RegisterType.DEVICE_ID: None,
    RegisterType.VERSION: "BBBB",  # build, patch, minor, major
    RegisterType.U8_ENUM: "B",
    RegisterType.U8_BOOL: "B",
    RegisterType.S32: "<l",
    RegisterType.U16: "<H",
}

ACCESS_CODES = ("", "rw", "r", "w")


class PidState(enum.IntEnum):
    """``LOCKBOX.PID.Status`` of the Syncro RRE: the lock-box servo state."""

    OFF = 0
    HOLD = 1
    PID_IN_LOW = 2
    PID_IN_HIGH = 3
    SETTLE = 4
    LOCKED = 5
    RELOCK = 6
    LWOSC_MAGIC = 7
    LWOSC_LOW = 8
    LWOSC_HIGH = 9


class TrackerState(enum.IntEnum):
    """``TRACKER0.STATE`` of the Syncro RRE: the phase tracker state."""

    OFF = 0
    DORMANT = 1
    SETTLING = 2
    ACTIVE = 3
    CORR_INC = 4
    CORR_DEC = 5


PID_STATUS_PATH = ("LOCKBOX", "PID", "Status")
TRACKER_STATE_PATH = ("TRACKER0", "STATE")


@dataclass(frozen=True, slots=True)
class RegisterDefinition:
    """What a RegDef says about one entry of a node."""

    type_id: int
    label: str
    access: str

    @property
    def is_node(self) -> bool:
        return self.type_id == RegisterType.NODE

    @property
    def name(self) -> str:
        return mangle_label(self.label)


def mangle_label(label: str) -> str:
    """The CamelCase name the Syncro tools give a label: ``"lock box"`` -> ``"LockBox"``."""
    words = ("".join(character for character in word if character.isalnum())
             for word in label.split(" "))
    return "".join(word[:1].upper() + word[1:] for word in words)


def _check_path(name: str, path: bytes | list[int] | tuple[int, ...]) -> bytes:
    try:
        return bytes(path)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of bytes (0..255), got {path!r}") from None


def register_address(node: bytes | list[int] | tuple[int, ...], register: int) -> bytes:
    """Address of entry ``register`` of ``node``."""
    if not 0 <= register <= 0xFF:
        raise ValueError(f"register id must be a byte, got {register}")
    return _check_path("node", node) + bytes((register,))


def subregisters_address(node: bytes | list[int] | tuple[int, ...] = b"") -> bytes:
    return bytes((SUBREGISTERS,)) + _check_path("node", node)


def definition_address(node: bytes | list[int] | tuple[int, ...], register: int) -> bytes:
    return bytes((REGISTER_DEFINITION,)) + register_address(node, register)


def version_address(node: bytes | list[int] | tuple[int, ...] = b"") -> bytes:
    return bytes((REGISTER_VERSION,)) + _check_path("node", node)


def read_request(address: bytes, source: int = BROADCAST_ADDRESS,
                 destination: int = BROADCAST_ADDRESS) -> Message:
    """The READ message for a register address."""
    if not address:
        raise ValueError("a register address has at least one byte")
    return Message(destination, source, Command.READ, bytes(address))


def write_request(address: bytes, data: bytes, source: int = BROADCAST_ADDRESS,
                  destination: int = BROADCAST_ADDRESS) -> Message:
    """The WRITE message for a register address and its encoded data."""
    if not address:
        raise ValueError("a register address has at least one byte")
    return Message(destination, source, Command.WRITE, bytes(address) + bytes(data))


def split_read_reply(payload: bytes) -> tuple[int, bytes]:
    """A DGRAM payload as (address byte, register data)."""
    if not payload:
        raise ValueError("empty DGRAM: the address byte is missing")
    return payload[0], bytes(payload[1:])


def read_reply(request: Message, data: bytes) -> Message:
    """The DGRAM answering ``request`` (used by the simulator)."""
    return Message(request.source, request.destination, Command.DGRAM,
                   bytes(request.payload[:1]) + bytes(data))


def parse_definition(data: bytes) -> RegisterDefinition:
    """Decode a RegDef: type byte, label, NUL, access byte."""
    if len(data) < 3:
        raise ValueError(f"RegDef of {len(data)} bytes; at least type, NUL and access needed")
    type_id, label_bytes, terminator, access_code = data[0], data[1:-2], data[-2], data[-1]
    if terminator != 0:
        raise ValueError(f"RegDef label not NUL-terminated: {data!r}")
    if access_code >= len(ACCESS_CODES):
        raise ValueError(f"RegDef access code {access_code} is not one of 0..3")
    return RegisterDefinition(type_id, label_bytes.decode("ascii", errors="replace"),
                              ACCESS_CODES[access_code])


def encode_definition(definition: RegisterDefinition) -> bytes:
    """Encode a RegDef (used by the simulator)."""
    if definition.access not in ACCESS_CODES:
        raise ValueError(f"access must be one of {ACCESS_CODES}, got {definition.access!r}")
    return (bytes((definition.type_id,)) + definition.label.encode("ascii") + b"\0"
            + bytes((ACCESS_CODES.index(definition.access),)))


def decode_value(type_id: int, data: bytes) -> object:
    """Register data as Python values.

    A fixed-size type gives one item (an int, or a tuple for multi-field types); data holding
    several items gives a list. Types unknown here give the raw bytes.
    """
    try:
        register_type = RegisterType(type_id)
    except ValueError:
        return bytes(data)
    if register_type is RegisterType.DEVICE_ID:
        return bytes(data).split(b"\0", 1)[0].decode("ascii", errors="replace")
    if register_type is RegisterType.REGDEF:
        return parse_definition(data)
    item_format = ITEM_FORMATS.get(register_type)
    if item_format is None:
        return bytes(data)
    size = struct.calcsize(item_format)
    if len(data) == 0 or len(data) % size:
        raise ValueError(f"{register_type.name} data of {len(data)} bytes is not a multiple "
                         f"of its item size {size}")
    items = [item[0] if len(item) == 1 else item for item in struct.iter_unpack(item_format, data)]
    if register_type is RegisterType.SUBREGS or len(items) > 1:
        return items
    return items[0]


def encode_value(type_id: int, value: object) -> bytes:
    """Python value as register data (used by the simulator)."""
    register_type = RegisterType(type_id)
    if register_type is RegisterType.DEVICE_ID:
        return str(value).encode("ascii") + b"\0"
    if register_type is RegisterType.REGDEF:
        if not isinstance(value, RegisterDefinition):
            raise ValueError("a REGDEF value is a RegisterDefinition")
        return encode_definition(value)
    item_format = ITEM_FORMATS.get(register_type)
    if item_format is None:
        return bytes(value)  # type: ignore[call-overload]
    items = value if isinstance(value, list) else [value]
    out = bytearray()
    for item in items:
        fields = item if isinstance(item, tuple) else (item,)
        out += struct.pack(item_format, *fields)
    return bytes(out)
