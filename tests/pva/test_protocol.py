"""Client requests as bytes: the size a name is counted for in a SEARCH, and CREATE_CHANNEL
frames of many names, for names of any length and alphabet."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pvflow.pva import protocol

NAMES = st.text(min_size=1, max_size=300).filter(lambda name: "\0" not in name)


@given(NAMES)
def test_search_size_of_a_name_is_what_it_adds_to_a_search(name: str) -> None:
    empty = protocol.search(1, 5076, [])
    one = protocol.search(1, 5076, [(7, name)])
    assert protocol.search_payload_size(name) == len(one) - len(empty)


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), NAMES), max_size=20))
def test_create_channel_is_one_message_per_name(channels: list[tuple[int, str]]) -> None:
    data = protocol.create_channel(channels)
    offset = 0
    decoded = []
    while offset < len(data):
        flags, command, size, order = protocol.read_header(data, offset)
        assert (flags, command, order) == (0, protocol.Command.CREATE_CHANNEL, "<")
        body = data[offset + protocol.HEADER_SIZE:offset + protocol.HEADER_SIZE + size]
        count, cid = int.from_bytes(body[:2], "little"), int.from_bytes(body[2:6], "little")
        name, end = protocol.read_string(body, 6, order)
        assert count == 1 and end == size
        decoded.append((cid, name))
        offset += protocol.HEADER_SIZE + size
    assert decoded == channels


@given(st.ip_addresses(v=4))
def test_ipv4_address_round_trip(address) -> None:
    host = str(address)
    expected = None if host == "0.0.0.0" else host
    assert protocol.read_address(protocol.write_address(host), 0) == (expected, 16)
