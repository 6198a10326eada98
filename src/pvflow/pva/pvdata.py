"""pvData: type descriptions, values, bitsets and partial updates (codec layer, no I/O).

A structure's fields are numbered depth-first, the structure itself being 0: that number is
the field's bit in the bitsets of GET, PUT and MONITOR. A decoded top-level structure is a
flat list indexed by bit (``leaves``), so a partial update writes a few slots of a list and
never rebuilds a tree. Decoding a reply with a given bitset runs a :class:`Plan` compiled
once per (type, bitset, byte order): runs of fixed-size scalars become one precompiled
``struct`` unpack, arrays one ``np.frombuffer``; only unions, variants and arrays of
structures go through the generic recursive decoder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import RemoteProtocolError
from .protocol import packer, read_size, read_string, write_size, write_string

MAX_DEPTH = 20  # pvxs's limit on nesting: a hostile type cannot exhaust the stack

STRUCT, UNION, ANY, BOUNDED_STRING = 0x80, 0x81, 0x82, 0x83
STRING = 0x60
STRUCT_ARRAY, UNION_ARRAY, ANY_ARRAY = 0x88, 0x89, 0x8A
ARRAY = 0x08

# scalar code -> struct format character (also numpy's, with the byte order in front)
SCALAR_FORMATS = {0x00: "?", 0x20: "b", 0x21: "h", 0x22: "i", 0x23: "q", 0x24: "B", 0x25: "H",
                  0x26: "I", 0x27: "Q", 0x42: "f", 0x43: "d"}
NUMPY_CODES = {0x00: "?", 0x20: "i1", 0x21: "i2", 0x22: "i4", 0x23: "i8", 0x24: "u1",
               0x25: "u2", 0x26: "u4", 0x27: "u8", 0x42: "f4", 0x43: "f8"}
TYPE_NAMES = {0x00: "boolean", 0x20: "byte", 0x21: "short", 0x22: "int", 0x23: "long",
              0x24: "ubyte", 0x25: "ushort", 0x26: "uint", 0x27: "ulong", 0x42: "float",
              0x43: "double", 0x60: "string", 0x80: "structure", 0x81: "union", 0x82: "any"}
CODE_OF_NUMPY = {np.dtype(code).newbyteorder("="): scalar for scalar, code in NUMPY_CODES.items()}
_DTYPES = {(order, scalar): np.dtype(order + code) for scalar, code in NUMPY_CODES.items()
           for order in "<>"}
_NATIVE = {scalar: np.dtype("=" + code) for scalar, code in NUMPY_CODES.items()}


@dataclass(frozen=True, slots=True, eq=False)
class FieldType:
    """One node of a pvData type description. Identity is equality: types come from a cache."""

    code: int
    type_id: str = ""
    names: tuple[str, ...] = ()
    fields: tuple[FieldType, ...] = ()
    element: FieldType | None = None  # the element type of arrays of structures or unions
    nodes: tuple[FieldType, ...] = field(init=False, repr=False)  # by bit, self first
    paths: dict[str, int] = field(init=False, repr=False)  # "a.b" -> bit
    plans: dict[tuple[bytes, str], Plan] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        nodes: list[FieldType] = [self]
        paths: dict[str, int] = {}
        if self.code == STRUCT:
            for name, child in zip(self.names, self.fields):
                base = len(nodes)
                paths[name] = base
                for path, bit in child.paths.items():
                    paths[f"{name}.{path}"] = base + bit
                nodes.extend(child.nodes)
        object.__setattr__(self, "nodes", tuple(nodes))
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "plans", {})

    @property
    def size(self) -> int:
        """How many bits this field takes in a bitset (1 unless a structure)."""
        return len(self.nodes)

    @property
    def is_array(self) -> bool:
        return bool(self.code & ARRAY) and self.code != BOUNDED_STRING

    @property
    def scalar_code(self) -> int:
        return self.code & ~ARRAY

    def lookup(self, path: str) -> FieldType | None:
        bit = self.paths.get(path)
        return None if bit is None else self.nodes[bit]

    def describe(self) -> str:
        """``double``, ``double[]``, ``structure`` or the structure's ID."""
        if self.code in (STRUCT, UNION) and self.type_id:
            return self.type_id
        name = TYPE_NAMES.get(self.scalar_code, f"0x{self.code:02x}")
        return name + "[]" if self.is_array else name


def scalar(code: int) -> FieldType:
    return FieldType(code)


def structure(type_id: str = "", **members: FieldType) -> FieldType:
    return FieldType(STRUCT, type_id, tuple(members), tuple(members.values()))


# --- type descriptions ----------------------------------------------------------------------------
TypeCache = dict[int, FieldType | None]


def read_type(buffer: Any, offset: int, order: str, cache: TypeCache, depth: int = 0
              ) -> tuple[FieldType | None, int]:
    """A type description; 0xFD defines an entry of the circuit's type cache, 0xFE reuses one."""
    if depth > MAX_DEPTH:
        raise RemoteProtocolError(f"type description nested deeper than {MAX_DEPTH}")
    code = buffer[offset]
    offset += 1
    if code == 0xFF:
        return None, offset
    if code == 0xFD:
        (key,) = packer(order, "H").unpack_from(buffer, offset)
        found, offset = read_type(buffer, offset + 2, order, cache, depth + 1)
        cache[key] = found
        return found, offset
    if code == 0xFE:
        (key,) = packer(order, "H").unpack_from(buffer, offset)
        if key not in cache:
            raise RemoteProtocolError(f"type cache entry {key} used before it was defined")
        return cache[key], offset + 2
    if code in (STRUCT, UNION):
        type_id, offset = read_string(buffer, offset, order)
        count, offset = read_size(buffer, offset, order)
        if count < 0 or count > len(buffer) - offset:
            raise RemoteProtocolError(f"structure with {count} fields")
        names: list[str] = []
        children: list[FieldType] = []
        for _ in range(count):
            name, offset = read_string(buffer, offset, order)
            child, offset = read_type(buffer, offset, order, cache, depth + 1)
            if child is None:
                raise RemoteProtocolError(f"field {name!r} of {type_id or 'a structure'} "
                                          "has no type")
            names.append(name)
            children.append(child)
        return FieldType(code, type_id, tuple(names), tuple(children)), offset
    if code in (STRUCT_ARRAY, UNION_ARRAY):
        element, offset = read_type(buffer, offset, order, cache, depth + 1)
        if element is None or element.code != code & ~ARRAY:
            raise RemoteProtocolError(f"array type 0x{code:02x} with element {element}")
        return FieldType(code, element=element), offset
    if code == BOUNDED_STRING:
        _, offset = read_size(buffer, offset, order)  # the bound: not enforced on reading
        return FieldType(STRING), offset
    if code in (ANY, ANY_ARRAY, STRING, STRING | ARRAY) or \
            (code & ~ARRAY) in SCALAR_FORMATS and code & 0x10 == 0:
        return FieldType(code), offset
    raise RemoteProtocolError(f"unknown or unsupported type code 0x{code:02x}")


_MEMO: dict[tuple[str, bytes], tuple[FieldType | None, dict[int, FieldType | None]]] = {}


def read_type_memo(buffer: Any, offset: int, order: str, cache: TypeCache
                   ) -> tuple[FieldType | None, int]:
    """:func:`read_type` of a description that runs to the end of ``buffer`` (INIT replies),
    memoised by its bytes: a thousand channels of one record type are described in a thousand
    identical byte strings (pvxs sends no cache entries), decoded once. Cache entries the
    description defines are replayed into ``cache`` on every hit. A description that reuses
    an entry defined earlier on its circuit (pvAccessCPP servers such as QSRV 1 do) means
    what that circuit's cache says, so it is decoded against ``cache`` and not memoised."""
    key = (order, bytes(buffer[offset:]))
    found = _MEMO.get(key)
    if found is None:
        defined: TypeCache = {}
        try:
            ftype, end = read_type(buffer, offset, order, defined)
        except RemoteProtocolError:  # an entry of this circuit's cache (or malformed)
            return read_type(buffer, offset, order, cache)
        if end != len(buffer):
            cache.update(defined)
            return ftype, end
        found = (ftype, defined)
        if len(_MEMO) < 1000:
            _MEMO[key] = found
    cache.update(found[1])
    return found[0], len(buffer)


def write_type(ftype: FieldType | None) -> bytes:
    if ftype is None:
        return b"\xff"
    if ftype.code in (STRUCT, UNION):
        parts = [bytes((ftype.code,)), write_string(ftype.type_id), write_size(len(ftype.names))]
        for name, child in zip(ftype.names, ftype.fields):
            parts.append(write_string(name))
            parts.append(write_type(child))
        return b"".join(parts)
    if ftype.code in (STRUCT_ARRAY, UNION_ARRAY):
        return bytes((ftype.code,)) + write_type(ftype.element)
    return bytes((ftype.code,))


# --- values: generic decoder ----------------------------------------------------------------------
def read_array(code: int, buffer: Any, offset: int, order: str, owned: bool
               ) -> tuple[np.ndarray, int]:
    """A numeric array in native byte order: a view of an ``owned`` buffer when the order
    already matches, else one copy (``astype`` swaps while it copies)."""
    count, offset = read_size(buffer, offset, order)
    dtype = _DTYPES[order, code]
    end = offset + count * dtype.itemsize
    if count < 0 or end > len(buffer):
        raise RemoteProtocolError(f"array of {count} elements runs past the end of its message")
    array = np.frombuffer(buffer, dtype, count, offset)
    if owned and dtype.isnative:
        return array, end
    return array.astype(_NATIVE[code]), end


def read_value(ftype: FieldType, buffer: Any, offset: int, order: str, cache: TypeCache,
               owned: bool = False, depth: int = 0) -> tuple[Any, int]:
    """One complete value of ``ftype``: numbers, str, numpy arrays, dicts for structures,
    the selected member's value for unions and variants (``None`` when empty)."""
    code = ftype.code
    form = SCALAR_FORMATS.get(code)
    if form is not None:
        unpacker = packer(order, form)
        return unpacker.unpack_from(buffer, offset)[0], offset + unpacker.size
    if code == STRING:
        return read_string(buffer, offset, order)
    if depth > MAX_DEPTH:
        raise RemoteProtocolError(f"value nested deeper than {MAX_DEPTH}")
    if code == STRUCT:
        result: dict[str, Any] = {}
        for name, child in zip(ftype.names, ftype.fields):
            result[name], offset = read_value(child, buffer, offset, order, cache, owned,
                                              depth + 1)
        return result, offset
    if code == UNION:
        selector, offset = read_size(buffer, offset, order)
        if selector < 0:
            return None, offset
        if selector >= len(ftype.fields):
            raise RemoteProtocolError(f"union selector {selector} of {len(ftype.fields)}")
        return read_value(ftype.fields[selector], buffer, offset, order, cache, owned, depth + 1)
    if code == ANY:
        inner, offset = read_type(buffer, offset, order, cache, depth + 1)
        if inner is None:
            return None, offset
        return read_value(inner, buffer, offset, order, cache, owned, depth + 1)
    scalar_code = code & ~ARRAY
    if scalar_code in NUMPY_CODES:
        return read_array(scalar_code, buffer, offset, order, owned)
    count, offset = read_size(buffer, offset, order)
    if count < 0 or count > len(buffer) - offset:
        raise RemoteProtocolError(f"array of {count} elements runs past the end of its message")
    items: list[Any] = []
    if code == STRING | ARRAY:
        for _ in range(count):
            text, offset = read_string(buffer, offset, order)
            items.append(text)
        return items, offset
    for _ in range(count):  # arrays of structures, unions, variants: a presence byte each
        present = buffer[offset]
        offset += 1
        if not present:
            items.append(None)
        elif code == ANY_ARRAY:
            inner, offset = read_type(buffer, offset, order, cache, depth + 1)
            value = None
            if inner is not None:
                value, offset = read_value(inner, buffer, offset, order, cache, owned, depth + 1)
            items.append(value)
        else:
            assert ftype.element is not None
            value, offset = read_value(ftype.element, buffer, offset, order, cache, owned,
                                       depth + 1)
            items.append(value)
    return items, offset


# --- bitsets and compiled partial decoding -----------------------------------------------------
def read_bitset(buffer: Any, offset: int, order: str) -> tuple[bytes, int]:
    """A bitset as little-endian bytes (whole 64-bit words come in the sender's order)."""
    count, offset = read_size(buffer, offset, order)
    end = offset + count
    if count < 0 or end > len(buffer):
        raise RemoteProtocolError(f"bitset of {count} bytes runs past the end of its message")
    raw = bytes(buffer[offset:end])
    if order == ">" and count >= 8:
        words = count // 8 * 8
        raw = b"".join(raw[start:start + 8][::-1] for start in range(0, words, 8)) + raw[words:]
    return raw, end


def bits_of(raw: bytes) -> list[int]:
    mask = int.from_bytes(raw, "little")
    return [bit for bit in range(mask.bit_length()) if mask >> bit & 1]


def write_bitset(bits: list[int] | set[int]) -> bytes:
    mask = 0
    for bit in bits:
        mask |= 1 << bit
    data = mask.to_bytes((mask.bit_length() + 7) // 8, "little")
    return write_size(len(data)) + data


def selected_leaves(ftype: FieldType, bits: list[int]) -> list[int]:
    """The bits of the leaves a bitset selects, in wire order (a set structure bit selects
    every field inside it)."""
    selected = set(bits)
    if any(bit >= ftype.size for bit in selected):
        raise RemoteProtocolError(f"bitset selects field {max(selected)} of a structure of "
                                  f"{ftype.size}")
    leaves: list[int] = []
    nodes = ftype.nodes
    bit = 0
    end = ftype.size
    while bit < end:
        node = nodes[bit]
        if bit in selected:
            if node.code == STRUCT:
                leaves.extend(b for b in range(bit + 1, bit + node.size)
                              if nodes[b].code != STRUCT)
            else:
                leaves.append(bit)
            bit += node.size
        else:
            bit += 1
    return leaves


FIXED, TEXT, NUMBERS, GENERIC = 0, 1, 2, 3


class Plan:
    """How to decode one (type, bitset, byte order): a short list of steps over leaf bits."""

    __slots__ = ("steps", "leaves")

    def __init__(self, ftype: FieldType, leaves: list[int], order: str):
        self.leaves = leaves
        self.steps: list[tuple[Any, ...]] = []
        run_format, run_bits = "", []
        for bit in leaves:
            node = ftype.nodes[bit]
            form = SCALAR_FORMATS.get(node.code)
            if form is not None:
                run_format += form
                run_bits.append(bit)
                continue
            if run_bits:
                self.steps.append((FIXED, struct.Struct(order + run_format), tuple(run_bits)))
                run_format, run_bits = "", []
            if node.code == STRING:
                self.steps.append((TEXT, bit))
            elif node.scalar_code in NUMPY_CODES and node.is_array:
                self.steps.append((NUMBERS, node.scalar_code, bit))
            else:
                self.steps.append((GENERIC, node, bit))
        if run_bits:
            self.steps.append((FIXED, struct.Struct(order + run_format), tuple(run_bits)))

    def run(self, buffer: Any, offset: int, order: str, cache: TypeCache, leaves: list[Any],
            owned: bool = False) -> int:
        for step in self.steps:
            kind = step[0]
            if kind == FIXED:
                unpacker = step[1]
                values = unpacker.unpack_from(buffer, offset)
                offset += unpacker.size
                for bit, value in zip(step[2], values):
                    leaves[bit] = value
            elif kind == TEXT:
                leaves[step[1]], offset = read_string(buffer, offset, order)
            elif kind == NUMBERS:
                leaves[step[2]], offset = read_array(step[1], buffer, offset, order, owned)
            else:
                leaves[step[2]], offset = read_value(step[1], buffer, offset, order, cache, owned)
        return offset


def plan_for(ftype: FieldType, raw_bits: bytes, order: str) -> Plan:
    key = (raw_bits, order)
    plan = ftype.plans.get(key)
    if plan is None:
        plan = Plan(ftype, selected_leaves(ftype, bits_of(raw_bits)), order)
        if len(ftype.plans) < 64:  # a server sending ever new bitsets must not grow memory
            ftype.plans[key] = plan
    return plan


def read_partial(ftype: FieldType, buffer: Any, offset: int, order: str, cache: TypeCache,
                 leaves: list[Any], owned: bool = False) -> tuple[list[int], int]:
    """Decode ``bitset + selected fields`` into ``leaves``; return the leaf bits that changed."""
    raw, offset = read_bitset(buffer, offset, order)
    plan = plan_for(ftype, raw, order)
    return plan.leaves, plan.run(buffer, offset, order, cache, leaves, owned)


def empty_leaves(ftype: FieldType) -> list[Any]:
    return [None] * ftype.size


def to_python(ftype: FieldType, leaves: list[Any], base: int = 0) -> Any:
    """The nested dict of a structure held as flat leaves (fields never received are None)."""
    if ftype.code != STRUCT:
        return leaves[base]
    result: dict[str, Any] = {}
    bit = base + 1
    for name, child in zip(ftype.names, ftype.fields):
        result[name] = to_python(child, leaves, bit)
        bit += child.size
    return result


# --- values: encoder ------------------------------------------------------------------------------
def write_value(ftype: FieldType, value: Any) -> bytes:
    """``value`` (Python/numpy, dicts for structures) in ``ftype``'s wire form, little-endian."""
    code = ftype.code
    form = SCALAR_FORMATS.get(code)
    if form is not None:
        if value is None:
            value = 0
        if form in "fd":
            return packer("<", form).pack(float(value))
        if form == "?":
            return b"\x01" if value else b"\x00"
        return packer("<", form).pack(int(value))
    if code in (STRING, BOUNDED_STRING):
        return write_string("" if value is None else str(value))
    if code == STRUCT:
        value = value or {}
        if not isinstance(value, dict):
            raise ValueError(f"a structure needs a dict, not {type(value).__name__}")
        unknown = set(value) - set(ftype.names)
        if unknown:
            raise ValueError(f"no field {sorted(unknown)[0]!r} in {ftype.describe()}")
        return b"".join(write_value(child, value.get(name))
                        for name, child in zip(ftype.names, ftype.fields))
    if code == UNION:
        if value is None:
            return b"\xff"
        name, member = value if isinstance(value, tuple) else (None, value)
        index = ftype.names.index(name) if name is not None else _union_member(ftype, value)
        return write_size(index) + write_value(ftype.fields[index], member)
    if code == ANY:
        if value is None:
            return b"\xff"
        inner = type_of(value)
        return write_type(inner) + write_value(inner, value)
    scalar_code = code & ~ARRAY
    if scalar_code in NUMPY_CODES:
        array = np.asarray([] if value is None else value, dtype=_DTYPES["<", scalar_code])
        array = array.reshape(-1)
        return write_size(array.size) + array.tobytes()
    items = [] if value is None else list(value)
    if code == STRING | ARRAY:
        return write_size(len(items)) + b"".join(write_string(str(item)) for item in items)
    parts = [write_size(len(items))]
    for item in items:
        if item is None:
            parts.append(b"\x00")
        elif code == ANY_ARRAY:
            inner = type_of(item)
            parts.append(b"\x01" + write_type(inner) + write_value(inner, item))
        else:
            assert ftype.element is not None
            parts.append(b"\x01" + write_value(ftype.element, item))
    return b"".join(parts)


def _union_member(ftype: FieldType, value: Any) -> int:
    wanted = type_of(value).code
    for index, member in enumerate(ftype.fields):
        if member.code == wanted:
            return index
    raise ValueError(f"no member of {ftype.describe()} holds a {type(value).__name__}")


def type_of(value: Any) -> FieldType:
    """The pvData type a Python value takes in a variant union."""
    if isinstance(value, bool):
        return FieldType(0x00)
    if isinstance(value, int):
        return FieldType(0x23 if not -2**31 <= value < 2**31 else 0x22)
    if isinstance(value, float):
        return FieldType(0x43)
    if isinstance(value, str):
        return FieldType(STRING)
    if isinstance(value, dict):
        return structure("", **{name: type_of(item) for name, item in value.items()})
    if isinstance(value, np.generic):
        return FieldType(CODE_OF_NUMPY[value.dtype.newbyteorder("=")])
    array = np.asarray(value)
    if array.dtype.kind in "US":
        return FieldType(STRING | ARRAY)
    native = array.dtype.newbyteorder("=")
    if native not in CODE_OF_NUMPY:
        raise ValueError(f"no pvData type for {array.dtype}")
    return FieldType(CODE_OF_NUMPY[native] | ARRAY)


def write_partial(ftype: FieldType, values: dict[int, Any]) -> bytes:
    """A bitset of the bits in ``values`` followed by those fields, in bit order."""
    bits = sorted(values)
    return write_bitset(bits) + b"".join(write_value(ftype.nodes[bit], values[bit])
                                         for bit in bits)
