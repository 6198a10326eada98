"""Well-formed inputs to start each target from: the fuzzer mutates real messages, so it
reaches the decoders' deep branches at once instead of rediscovering the framing."""

from __future__ import annotations

import struct

import numpy as np

from pvflow.ca import protocol as ca
from pvflow.ioc.detector.backends.eiger.stream import encode as encode_stream
from pvflow.ioc.sync.backends.rre.protocol import Command as RreCommand
from pvflow.ioc.sync.backends.rre.protocol import Message, encode_frame
from pvflow.pva import protocol as pva
from pvflow.pva.pvdata import FieldType, structure, write_bitset, write_type, write_value

NTSCALAR_TYPE = structure(
    "epics:nt/NTScalar:1.0", value=FieldType(0x43),
    alarm=structure("alarm_t", severity=FieldType(0x22), status=FieldType(0x22),
                    message=FieldType(0x60)),
    timeStamp=structure("time_t", secondsPastEpoch=FieldType(0x23),
                        nanoseconds=FieldType(0x22), userTag=FieldType(0x22)),
    display=structure("", units=FieldType(0x60), precision=FieldType(0x22),
                      choices=FieldType(0x68)))


def _ca_stream() -> bytes:
    return b"".join([
        ca.header(ca.Command.VERSION, 0, 0, 13, 0, 0),
        ca.header(ca.Command.ACCESS_RIGHTS, 0, 0, 0, 1, 3),
        ca.header(ca.Command.CREATE_CHAN, 0, 6, 8, 1, 77),
        ca.header(ca.Command.READ_NOTIFY, 8, 6, 1, 1, 0) + struct.pack(">d", 1.5),
        ca.header(ca.Command.READ_NOTIFY, 56, 14 + 6, 2, 1, 1) + bytes(40) + b"hello\0\0\0"
        + bytes(8),
        ca.header(ca.Command.EVENT_ADD, 24, 20, 1, 1, 1) + bytes(16) + struct.pack(">d", 2.0),
        ca.header(ca.Command.WRITE_NOTIFY, 0, 6, 1, 1, 9),
        ca.header(ca.Command.ERROR, 16, 0, 0, 1, 160) + ca.read_notify(6, 1, 1, 2),
        ca.header(ca.Command.READ_NOTIFY, 0xFFFF, 6, 0, 1, 0)[:16] + struct.pack(">II", 16, 2)
        + struct.pack(">2d", 1, 2),
    ])


def _pva_message(command: int, payload: bytes) -> bytes:
    return pva.HEADER.pack(0xCA, 2, 0x40, command, len(payload)) + payload


def _pva_stream() -> bytes:
    init = struct.pack("<IB", 100, 0x08) + b"\xff" + write_type(NTSCALAR_TYPE)
    value = {"value": 3.5, "alarm": {"severity": 0, "status": 0, "message": ""},
             "display": {"units": "mm", "choices": ["a", "b"]}}
    data = struct.pack("<IB", 100, 0x00) + b"\xff" + write_bitset([0]) + write_value(
        NTSCALAR_TYPE, value)
    return b"".join([
        pva.HEADER.pack(0xCA, 2, 0x41, 2, 0),  # SET_BYTE_ORDER
        _pva_message(pva.Command.CONNECTION_VALIDATION, struct.pack("<IH", 16384, 512)
                     + b"\x01\x09anonymous"),
        _pva_message(pva.Command.CONNECTION_VALIDATED, b"\xff"),
        _pva_message(pva.Command.CREATE_CHANNEL, struct.pack("<II", 1, 7) + b"\xff"),
        _pva_message(pva.Command.GET, init),
        _pva_message(pva.Command.GET, data),
        _pva_message(pva.Command.MESSAGE, struct.pack("<IB", 100, 1) + b"\x03hey"),
    ])


def _pvdata() -> bytes:
    value = {"value": 3.5, "alarm": {"severity": 1, "status": 2, "message": "x"}}
    return b"\x00" + write_type(NTSCALAR_TYPE) + write_value(NTSCALAR_TYPE, value)


def _pva_datagram() -> bytes:
    payload = bytes(12) + struct.pack("<I", 1) + bytes(16) + struct.pack("<H", 5075) \
        + b"\x03tcp" + b"\x01" + struct.pack("<HI", 1, 42)
    return _pva_message(pva.Command.SEARCH_RESPONSE, payload)


def _eiger() -> list[bytes]:
    image = np.arange(12, dtype=np.uint16).reshape(3, 4)
    series = {"series_id": 1, "series_unique_id": "u"}
    frame = {**series, "type": "image", "image_id": 0, "data": {"threshold_1": image},
             "start_time": [1, 10], "real_time": [1, 100]}
    return [encode_stream({**series, "type": "start", "channels": ["threshold_1"],
                           "image_size_x": 4, "image_size_y": 3, "number_of_images": 1,
                           "count_time": 0.1, "threshold_energy": {"threshold_1": 4000.0}}),
            encode_stream(frame), encode_stream(frame, "bslz4"), encode_stream(frame, "lz4"),
            encode_stream({"type": "end", "series_id": 1, "series_unique_id": "u"})]


def seeds() -> dict[str, list[bytes]]:
    """Seed inputs by target (the first byte of stream targets picks the read size)."""
    return {
        "ca_circuit": [b"\x07" + _ca_stream(), b"\x3f" + _ca_stream()],
        "ca_datagram": [ca.header(ca.Command.SEARCH, 8, 5064, 0, 0xFFFFFFFF, 1)
                        + struct.pack(">H6x", 13)
                        + ca.header(ca.Command.BEACON, 0, 13, 5064, 1, 0)],
        "pva_circuit": [b"\x05" + _pva_stream(), b"\x3f" + _pva_stream()],
        "pva_datagram": [_pva_datagram()],
        "pvdata": [_pvdata()],
        "rre_frames": [b"\x03" + encode_frame(Message(0xFF, 0xFF, RreCommand.DGRAM, b"\x10\x01"))
                       + encode_frame(Message(0xFF, 0xFF, RreCommand.NACK, b"\x00\x02"))],
        "eiger_stream": _eiger(),
    }
