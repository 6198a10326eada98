"""RBP framing and HRT register codec: golden bytes, round trips, every split of a stream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvflow.ioc.sync.backends.rre.protocol import (ESCAPED_BYTES, Command, CorruptFrame, FrameDecoder,
                                          Message, NackReason, crc16, decode_frame,
                                          encode_frame, escape, nack_payload, nack_reason,
                                          unescape)
from pvflow.ioc.sync.backends.rre.registers import (PidState, RegisterDefinition, RegisterType,
                                           decode_value, definition_address, encode_value,
                                           mangle_label, parse_definition, read_reply,
                                           read_request, register_address, split_read_reply,
                                           subregisters_address)

# The READ example of the Syncro documentation, as the Syncro tools frame it: register 0f 06
# read by 0x11 from 0x42, and the device's answer.
READ_BODY = bytes([0x42, 0x5E, 0x51, 0x04, 0x0F, 0x06, 0x94, 0xC0])
DGRAM_BODY = bytes([0x5E, 0x51, 0x42, 0x08, 0x0F, 0x0E, 0x0C, 0x09, 0x77, 0xCC])


def test_crc16_is_xmodem():
    assert crc16(b"123456789") == 0x31C3
    assert crc16(b"\x00") == 0x0000
    assert crc16(b"\x01") == 0x1021
    assert crc16(bytes([0x42, 0x11, 0x04, 0x0F, 0x06])) == 0x94C0
    # appending the CRC big-endian gives 0: how receivers may check a frame
    assert crc16(bytes([0x42, 0x11, 0x04, 0x0F, 0x06, 0x94, 0xC0])) == 0


def test_golden_frames_decode_and_encode():
    read = decode_frame(READ_BODY)
    assert read == Message(destination=0x42, source=0x11, command=Command.READ,
                           payload=b"\x0f\x06")
    assert encode_frame(read) == b"\x0d" + READ_BODY + b"\x0a"
    dgram = decode_frame(DGRAM_BODY)
    assert (dgram.destination, dgram.source, dgram.command) == (0x11, 0x42, Command.DGRAM)
    assert split_read_reply(dgram.payload) == (0x0F, b"\x0e\x0c\x09")
    assert encode_frame(dgram) == b"\x0d" + DGRAM_BODY + b"\x0a"


def test_escaping_covers_every_control_byte():
    raw = bytes(sorted(ESCAPED_BYTES))
    escaped = escape(raw)
    assert escaped == bytes([0x5E, 0x4A, 0x5E, 0x4D, 0x5E, 0x51, 0x5E, 0x53, 0x5E, 0x80,
                             0x5E, 0x9E])
    assert unescape(escaped) == raw
    for control in (0x0A, 0x0D, 0x11, 0x13):
        assert control not in escaped


@given(st.binary(max_size=300))
def test_escape_round_trip(data):
    escaped = escape(data)
    assert unescape(escaped) == data
    assert 0x0A not in escaped and 0x0D not in escaped


def test_unescape_rejects_broken_sequences():
    with pytest.raises(ValueError, match="ends inside an escape"):
        unescape(b"\x01\x5e")
    with pytest.raises(ValueError, match="0x5e followed by 0x41"):
        unescape(b"\x5e\x41")


def test_message_rejects_bad_fields():
    with pytest.raises(ValueError, match="destination must be a byte"):
        Message(256, 0, Command.READ)
    with pytest.raises(ValueError, match="command must be a byte"):
        Message(0, 0, -1)


messages = st.builds(Message, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
                     st.binary(max_size=64))


@given(st.lists(messages, min_size=1, max_size=5), st.data())
def test_decoder_handles_any_chunking(batch, data):
    stream = b"".join(encode_frame(message) for message in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = FrameDecoder()
    received = []
    start = 0
    for cut in cuts + [len(stream)]:
        received.extend(decoder.receive(stream[start:cut]))
        start = cut
    assert received == batch


def test_decoder_splits_at_every_point():
    stream = encode_frame(Message(1, 2, Command.DGRAM, bytes(range(20)))) * 2
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        events = decoder.receive(stream[:cut]) + decoder.receive(stream[cut:])
        assert [e.payload for e in events] == [bytes(range(20))] * 2


def test_decoder_reports_corruption_and_recovers():
    good = encode_frame(Message(1, 2, Command.ACK))
    damaged = bytearray(good)
    damaged[-2] ^= 0x01
    decoder = FrameDecoder()
    events = decoder.receive(b"junk" + bytes(damaged) + good)
    assert decoder.skipped_bytes == 4
    assert isinstance(events[0], CorruptFrame) and "CRC mismatch" in events[0].reason
    assert events[1] == Message(1, 2, Command.ACK)
    # a frame cut short by a new SOT, and one too short to hold a CRC
    events = decoder.receive(b"\x0d\x01\x02" + good + b"\x0d\x01\x0a")
    assert isinstance(events[0], CorruptFrame) and "new SOT" in events[0].reason
    assert events[1] == Message(1, 2, Command.ACK)
    assert isinstance(events[2], CorruptFrame) and "shorter" in events[2].reason


def test_decoder_bounds_a_frame_without_eot():
    decoder = FrameDecoder(max_body_length=16)
    events = decoder.receive(b"\x0d" + b"\x01" * 40)
    assert isinstance(events[0], CorruptFrame) and "no EOT" in events[0].reason


def test_nack_reasons():
    nack = Message(1, 2, Command.NACK, nack_payload(NackReason.NOT_READABLE))
    assert nack_reason(nack) == "NACK NOT_READABLE (0x0007)"
    assert "0x1234" in nack_reason(Message(1, 2, Command.NACK, b"\x12\x34"))


def test_hrt_addresses():
    assert subregisters_address() == b"\xfe"
    assert subregisters_address(b"\x05\x02") == b"\xfe\x05\x02"
    assert definition_address(b"\x05", 2) == b"\xff\x05\x02"
    assert register_address([5, 2], 1) == b"\x05\x02\x01"
    request = read_request(b"\x05\x02\x01")
    assert request.command == Command.READ and request.payload == b"\x05\x02\x01"
    assert (request.source, request.destination) == (0xFF, 0xFF)
    with pytest.raises(ValueError):
        register_address(b"", 300)
    with pytest.raises(ValueError):
        read_request(b"")


def test_register_definitions_round_trip():
    definition = RegisterDefinition(RegisterType.U8_ENUM, "Status", "r")
    data = encode_value(RegisterType.REGDEF, definition)
    assert data == b"\x55Status\x00\x02"
    assert parse_definition(data) == definition
    node = parse_definition(b"\x02LOCKBOX\x00\x00")
    assert node.is_node and node.access == ""
    with pytest.raises(ValueError, match="access code"):
        parse_definition(b"\x02X\x00\x07")
    with pytest.raises(ValueError, match="NUL"):
        parse_definition(b"\x02XY\x01")


def test_values():
    assert decode_value(RegisterType.U8_ENUM, b"\x05") == PidState.LOCKED
    assert decode_value(RegisterType.VERSION, b"\x07\x03\x04\x01") == (7, 3, 4, 1)
    assert decode_value(RegisterType.SUBREGS, b"\x01\x05") == [1, 5]
    assert decode_value(RegisterType.DEVICE_ID, b"RRE-1\x00") == "RRE-1"
    assert decode_value(RegisterType.S32, encode_value(RegisterType.S32, -5)) == -5
    assert decode_value(0xEE, b"\x01\x02") == b"\x01\x02"
    with pytest.raises(ValueError, match="not a multiple"):
        decode_value(RegisterType.S32, b"\x01\x02")


def test_read_reply_carries_one_address_byte():
    request = read_request(b"\x05\x02\x01", source=0x11, destination=0x42)
    reply = read_reply(request, b"\x05")
    assert (reply.destination, reply.source, reply.command) == (0x11, 0x42, Command.DGRAM)
    assert split_read_reply(reply.payload) == (0x05, b"\x05")


def test_label_mangling():
    assert mangle_label("lock box") == "LockBox"
    assert mangle_label("VerHW") == "VerHW"
    assert mangle_label("TRACKER0") == "TRACKER0"
