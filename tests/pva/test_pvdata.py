"""pvData codec: golden bytes from qsrv, round trips of types and values, bitsets, pvRequest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvflow.errors import RemoteProtocolError
from pvflow import compression as codecs
from pvflow.pva import request
from pvflow.pva.nt import put_values, view_of
from pvflow.pva.pvdata import (ANY, STRING, STRUCT_ARRAY, UNION, FieldType, bits_of,
                               empty_leaves, read_partial, read_type, read_type_memo,
                               read_value, structure,
                               to_python, write_bitset, write_partial, write_type, write_value)

# The type qsrv (pvxs 1.5) sends in a GET INIT reply for an ai record, and a GET reply.
NTSCALAR_TYPE = (
    b'\x80\x15epics:nt/NTScalar:1.0\x06\x05valueC\x05alarm\x80\x07alarm_t\x03\x08severity"'
    b'\x06status"\x07message`\ttimeStamp\x80\x06time_t\x03\x10secondsPastEpoch#\x0bnanoseconds'
    b'"\x07userTag"\x07display\x80\x00\x06\x08limitLowC\tlimitHighC\x0bdescription`\x05units`'
    b'\tprecision"\x04form\x80\x06enum_t\x02\x05index"\x07choicesh\x07control\x80\x00\x03\x08'
    b'limitLowC\tlimitHighC\x07minStepC\nvalueAlarm\x80\x00\n\x06active\x00\rlowAlarmLimitC'
    b'\x0flowWarningLimitC\x10highWarningLimitC\x0ehighAlarmLimitC\x10lowAlarmSeverity"\x12'
    b'lowWarningSeverity"\x13highWarningSeverity"\x11highAlarmSeverity"\nhysteresisC')
VALUE_REPLY = b'\x01\x02\x00\x00\x00\x00\x00\x00\xf8?'  # bitset {1}, value 1.5


def test_golden_ntscalar_type_and_value_reply() -> None:
    ftype, end = read_type(NTSCALAR_TYPE, 0, "<", {})
    assert end == len(NTSCALAR_TYPE) and ftype is not None
    assert ftype.type_id == "epics:nt/NTScalar:1.0"
    assert ftype.paths["value"] == 1 and ftype.paths["display.units"] == 14
    assert ftype.lookup("display.form.choices").describe() == "string[]"
    assert write_type(ftype) == NTSCALAR_TYPE
    leaves = empty_leaves(ftype)
    changed, end = read_partial(ftype, VALUE_REPLY, 0, "<", {}, leaves)
    assert changed == [1] and end == len(VALUE_REPLY) and leaves[1] == 1.5
    assert view_of(ftype).value(leaves) == 1.5


def test_big_endian_reply() -> None:
    ftype = structure("", value=FieldType(0x43), count=FieldType(0x22))
    data = b"\x01\x01" + np.array([2.5], ">f8").tobytes() + np.array([7], ">i4").tobytes()
    leaves = empty_leaves(ftype)
    read_partial(ftype, data, 0, ">", {}, leaves)
    assert leaves[1:] == [2.5, 7]


def test_type_cache_entries() -> None:
    inner = write_type(structure("", a=FieldType(0x22)))
    data = b"\xfd\x05\x00" + inner + b"\xfe\x05\x00"
    cache: dict = {}
    first, offset = read_type(data, 0, "<", cache)
    second, offset = read_type(data, offset, "<", cache)
    assert first is second and offset == len(data)
    with pytest.raises(RemoteProtocolError):
        read_type(b"\xfe\x09\x00", 0, "<", {})


def test_a_reused_cache_entry_means_what_its_own_circuit_defined() -> None:
    """pvAccessCPP servers describe later channels by a cache entry of their circuit: the
    same bytes are a double on one circuit and a string on another."""
    doubles = {1: structure("", value=FieldType(0x43))}
    strings = {1: structure("", value=FieldType(STRING))}
    reuse = b"\xfe\x01\x00"
    on_first, _ = read_type_memo(reuse, 0, "<", doubles)
    on_second, _ = read_type_memo(reuse, 0, "<", strings)
    assert on_first is doubles[1] and on_second is strings[1]


SCALARS = {0x00: st.booleans(), 0x20: st.integers(-128, 127), 0x21: st.integers(-2**15, 2**15 - 1),
           0x22: st.integers(-2**31, 2**31 - 1), 0x23: st.integers(-2**63, 2**63 - 1),
           0x24: st.integers(0, 255), 0x25: st.integers(0, 2**16 - 1),
           0x26: st.integers(0, 2**32 - 1), 0x27: st.integers(0, 2**64 - 1),
           0x43: st.floats(allow_nan=False), 0x60: st.text(max_size=300)}
names = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,8}", fullmatch=True)


def leaf_types() -> st.SearchStrategy[FieldType]:
    codes = list(SCALARS) + [code | 0x08 for code in SCALARS]
    return st.sampled_from(codes).map(FieldType)


field_types = st.recursive(
    leaf_types(),
    lambda children: st.one_of(
        st.dictionaries(names, children, min_size=1, max_size=4).map(
            lambda members: structure("test:s", **members)),
        st.dictionaries(names, children, min_size=1, max_size=3).map(
            lambda members: FieldType(UNION, "", tuple(members), tuple(members.values()))),
        st.dictionaries(names, children, min_size=1, max_size=2).map(
            lambda members: FieldType(STRUCT_ARRAY, element=structure("test:e", **members))),
    ), max_leaves=8)


@st.composite
def typed_values(draw: st.DrawFn, ftype: FieldType | None = None):
    ftype = ftype or draw(field_types)
    return ftype, draw(value_for(ftype))


def value_for(ftype: FieldType) -> st.SearchStrategy:
    code = ftype.code
    if code == 0x80:
        return st.fixed_dictionaries({name: value_for(child)
                                      for name, child in zip(ftype.names, ftype.fields)})
    if code == UNION:
        return st.sampled_from(range(len(ftype.fields))).flatmap(
            lambda index: value_for(ftype.fields[index]).map(
                lambda value: (ftype.names[index], value)))
    if code == STRUCT_ARRAY:
        return st.lists(st.one_of(st.none(), value_for(ftype.element)), max_size=3)
    if code & 0x08:
        scalar = code & ~0x08
        if scalar == STRING:
            return st.lists(SCALARS[STRING], max_size=5)
        dtype = np.dtype({0x00: "?", 0x20: "i1", 0x21: "i2", 0x22: "i4", 0x23: "i8", 0x24: "u1",
                          0x25: "u2", 0x26: "u4", 0x27: "u8", 0x43: "f8"}[scalar])
        return st.lists(SCALARS[scalar], max_size=20).map(lambda items: np.array(items, dtype))
    return SCALARS[code]


def expected(ftype: FieldType, value):
    if ftype.code == 0x80:
        return {name: expected(child, value[name])
                for name, child in zip(ftype.names, ftype.fields)}
    if ftype.code == UNION:
        return expected(ftype.fields[ftype.names.index(value[0])], value[1])
    if ftype.code == STRUCT_ARRAY:
        return [None if item is None else expected(ftype.element, item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def plain(value):
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


@settings(max_examples=200, deadline=None)
@given(typed_values())
def test_type_and_value_round_trip(typed) -> None:
    ftype, value = typed
    data = write_type(ftype) + write_value(ftype, value)
    decoded_type, offset = read_type(data, 0, "<", {})
    assert write_type(decoded_type) == write_type(ftype)
    decoded, offset = read_value(decoded_type, data, offset, "<", {})
    assert offset == len(data)
    assert plain(decoded) == expected(ftype, value)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_partial_update_round_trip(data) -> None:
    ftype = data.draw(st.dictionaries(names, field_types, min_size=1, max_size=4).map(
        lambda members: structure("test:top", **members)))
    full = data.draw(value_for(ftype))
    leaves = empty_leaves(ftype)
    read_partial(ftype, write_bitset([0]) + write_value(ftype, full), 0, "<", {}, leaves)
    assert plain(to_python(ftype, leaves)) == expected(ftype, full)
    leaf_bits = [bit for bit in range(1, ftype.size) if ftype.nodes[bit].code != 0x80]
    chosen = data.draw(st.sets(st.sampled_from(leaf_bits))) if leaf_bits else set()
    update = {bit: data.draw(value_for(ftype.nodes[bit])) for bit in chosen}
    changed, _ = read_partial(ftype, write_partial(ftype, update), 0, "<", {}, leaves)
    assert sorted(changed) == sorted(chosen)
    for bit, value in update.items():
        assert plain(leaves[bit]) == expected(ftype.nodes[bit], value)


@given(st.sets(st.integers(0, 300)))
def test_bitset_round_trip(bits) -> None:
    data = write_bitset(bits)
    from pvflow.pva.pvdata import read_bitset
    raw, end = read_bitset(data, 0, "<")
    assert end == len(data) and bits_of(raw) == sorted(bits)


def test_variant_union_and_nested_values() -> None:
    ftype = structure("", any=FieldType(ANY), table=structure("", a=FieldType(0x22 | 0x08)))
    value = {"any": {"x": 1.5, "y": "text"}, "table": {"a": [1, 2, 3]}}
    data = write_value(ftype, value)
    decoded, _ = read_value(ftype, data, 0, "<", {})
    assert plain(decoded) == {"any": {"x": 1.5, "y": "text"}, "table": {"a": [1, 2, 3]}}


def test_hostile_sizes_raise_remote_protocol_errors() -> None:
    array = FieldType(0x43 | 0x08)
    with pytest.raises(RemoteProtocolError):
        read_value(array, b"\xfe\xff\xff\xff\x7f", 0, "<", {})
    deep = b"\x80\x00\x01\x01a" * 30 + b"\x22"
    with pytest.raises(RemoteProtocolError):
        read_type(deep, 0, "<", {})
    with pytest.raises(RemoteProtocolError):
        read_type(b"\x77", 0, "<", {})


def test_pvrequest_texts() -> None:
    assert request.parse("field(value,alarm)record[queueSize=4]") == (
        ["value", "alarm"], {"queueSize": "4"})
    assert request.parse("value,timeStamp.nanoseconds") == (
        ["value", "timeStamp.nanoseconds"], {})
    data = request.encode("field(value)", pipeline=True)
    ftype, offset = read_type(data, 0, "<", {})
    value, _ = read_value(ftype, data, offset, "<", {})
    assert ftype.paths["field.value"] and value["record"]["_options"] == {"pipeline": "true"}
    with pytest.raises(ValueError):
        request.parse("field(value")


def test_put_values_for_enum_and_scalar() -> None:
    ftype, _ = read_type(NTSCALAR_TYPE, 0, "<", {})
    assert put_values(ftype, 3.5) == {1: 3.5}
    assert put_values(ftype, {"value": 2, "alarm": {"severity": 1}}) == {1: 2, 3: 1}
    enum = structure("epics:nt/NTEnum:1.0", value=structure(
        "enum_t", index=FieldType(0x22), choices=FieldType(STRING | 0x08)))
    assert put_values(enum, "b", ("a", "b")) == {2: 1}
    assert put_values(enum, 0) == {2: 0}
    with pytest.raises(ValueError, match="not one of"):
        put_values(enum, "z", ("a", "b"))


@pytest.mark.parametrize("codec", ["lz4", "bslz4"])
@pytest.mark.parametrize("dtype, count", [("u2", 1000 * 1000 // 7), ("i4", 4099), ("u1", 13),
                                          ("f8", 8192)])
def test_codecs_round_trip(codec, dtype, count) -> None:
    data = (np.arange(count) % 251).astype(dtype)
    packed = np.frombuffer(codecs.compress(codec, data), np.uint8)
    out = codecs.decompress(codec, packed, np.dtype(dtype), data.nbytes)
    np.testing.assert_array_equal(out, data)


def test_bitshuffle_layout_matches_bitshuffle() -> None:
    # bitshuffle's layout: row (byte j, bit k) holds bit k of byte j of every element, LSB first
    elements = np.array([1, 0, 0, 0, 0, 0, 0, 0x8000], np.uint16).view(np.uint8)
    shuffled = codecs.shuffle(elements, 8, 2)
    assert shuffled[0] == 0b00000001 and shuffled[15] == 0b10000000
    assert shuffled.sum() == shuffled[0] + shuffled[15]
