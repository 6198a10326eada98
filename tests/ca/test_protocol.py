"""CA framing: golden bytes against caproto's encoder, every split point, malformed input."""

from __future__ import annotations

import struct

import caproto
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvflow.ca import protocol
from pvflow.ca.protocol import Command, read_header


@pytest.mark.parametrize("ours, theirs", [
    (protocol.version(0), caproto.VersionRequest(priority=0, version=13)),
    (protocol.create_channel("T:ai", 7), caproto.CreateChanRequest("T:ai", 7, 13)),
    (protocol.read_notify(20, 1, 3, 9), caproto.ReadNotifyRequest(20, 1, 3, 9)),
    (protocol.clear_channel(3, 7), caproto.ClearChannelRequest(3, 7)),
    (protocol.event_cancel(6, 0, 3, 4), caproto.EventCancelRequest(6, 3, 4)),
    (protocol.echo(), caproto.EchoRequest()),
    (protocol.host_name("box"), caproto.HostNameRequest("box")),
    (protocol.client_name("me"), caproto.ClientNameRequest("me")),
])
def test_requests_match_caproto(ours: bytes, theirs: caproto.Message) -> None:
    assert ours == bytes(theirs)


def test_event_add_matches_caproto() -> None:
    theirs = caproto.EventAddRequest(data_type=14, data_count=1, sid=3, subscriptionid=4,
                                     low=0, high=0, to=0, mask=5)
    assert protocol.event_add(14, 1, 3, 4, 5) == bytes(theirs)


def test_search_datagram_matches_caproto() -> None:
    theirs = caproto.SearchRequest("T:ai", 12, 13, reply=caproto.NO_REPLY)
    assert protocol.search("T:ai", 12) == bytes(theirs)


def test_extended_header_for_big_payloads() -> None:
    frame = protocol.write_notify(6, 100_000, 1, 2, b"\0" * 800_000)
    parsed = read_header(frame, 0, len(frame))
    assert parsed is not None
    command, data_type, count, sid, ioid, start, stop = parsed
    assert (command, data_type, count, sid, ioid) == (Command.WRITE_NOTIFY, 6, 100_000, 1, 2)
    assert (start, stop) == (24, 24 + 800_000)
    theirs = caproto.ReadNotifyRequest(6, 100_000, 1, 2)
    assert protocol.read_notify(6, 100_000, 1, 2) == bytes(theirs)


@given(st.binary(max_size=200), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_header_round_trip(payload: bytes, count: int, parameter: int) -> None:
    padded = protocol.pad_payload(payload)
    frame = protocol.header(Command.WRITE, len(padded), 6, count, parameter, 1) + padded
    parsed = read_header(frame, 0, len(frame))
    assert parsed is not None
    assert parsed[:5] == (Command.WRITE, 6, count, parameter, 1)
    assert parsed[6] == len(frame)


def test_incomplete_headers_need_more_data() -> None:
    extended = protocol.write_notify(6, 70_000, 1, 2, b"\0" * 560_000)
    plain = protocol.read_notify(6, 1, 1, 2)
    for cut in range(24):
        assert read_header(extended, 0, cut) is None
    for cut in range(16):
        assert read_header(plain, 0, cut) is None
    assert read_header(plain, 0, 16) is not None


def test_decode_search_reply_and_beacon() -> None:
    reply = bytes(caproto.VersionResponse(13)) + bytes(
        caproto.SearchResponse(port=5077, ip="127.0.0.1", cid=33, version=13))
    beacon = bytes(caproto.Beacon(13, 5077, 4, "10.0.0.2"))
    messages = protocol.decode_datagram(reply + beacon, "192.168.1.1")
    assert messages == [protocol.SearchResponse(33, "127.0.0.1", 5077, 13),
                        protocol.Beacon("10.0.0.2", 5077, 4)]


def test_search_reply_without_address_uses_sender() -> None:
    reply = struct.pack(">HHHHII", 6, 8, 5064, 0, 0xFFFFFFFF, 5) + b"\0\x0d" + b"\0" * 6
    assert protocol.decode_datagram(reply, "10.1.2.3") == [
        protocol.SearchResponse(5, "10.1.2.3", 5064, 13)]


@given(st.binary(max_size=300))
def test_garbage_datagrams_never_raise(data: bytes) -> None:
    protocol.decode_datagram(data, "127.0.0.1")


def test_status_text_names_the_code() -> None:
    assert protocol.describe_status(160).startswith("ECA_PUTFAIL")
    assert "unknown" in protocol.describe_status(12345)
