"""Dectris Stream V2 messages: CBOR ``start`` / ``image`` / ``end`` maps (pure, no I/O).

The detector pushes one CBOR map per ZeroMQ message. Images are RFC 8746 multidimensional
arrays (tag 40: ``[dimensions, typed array]``, row-major, dimensions ``[height, width]``) whose
typed-array byte string (tags 64-87) may be replaced by a Dectris compressed byte string (tag
56500: ``[algorithm, element size, data]``, HDF5-filter framing). Decompression is Dectris's own
``dectris-compression`` library, so what the detector sends is decoded by the vendor's code;
the encoder below (used by the simulator) writes the same framing from pvflow's bitshuffle/LZ4
codec, and the two meeting in the tests checks both.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Union

import cbor2
import numpy as np

from .....compression import compress as ndarray_compress
from .....compression import default_block_size

MULTI_DIMENSIONAL_ARRAY = 40
DECTRIS_COMPRESSION = 56500
ALGORITHMS = ("bslz4", "lz4")
_HDF5_HEADER = struct.Struct(">QI")  # uncompressed size, block size in bytes
_LZ4_BLOCK_SIZE = struct.Struct(">I")


class StreamError(ValueError):
    """A stream message that cannot be decoded; the message says which part and why."""


# -- RFC 8746 typed arrays ------------------------------------------------------------------

def typed_array_dtype(tag: int) -> np.dtype:
    """The numpy dtype of typed-array tag 64..87 (bits ``0b010_f_s_e_ll``: float, signed,
    little-endian, log2 of the size; 68 is clamped uint8, which reads as uint8)."""
    bits = tag - 64
    if not 0 <= bits <= 23 or tag == 76 or tag in (83, 87):
        raise StreamError(f"CBOR tag {tag} is not a supported typed array")
    little, size_code = bits >> 2 & 1, bits & 3
    if bits >> 4 & 1:
        kind, size = "f", 2 << size_code
    else:
        kind, size = ("i" if bits >> 3 & 1 else "u"), 1 << size_code
    return np.dtype(f"{'<' if little or size == 1 else '>'}{kind}{size}")


def typed_array_tag(dtype: np.dtype) -> int:
    """The little-endian typed-array tag for ``dtype`` (the byte order the detector sends)."""
    if dtype.kind == "f":
        return 84 + {2: 0, 4: 1, 8: 2}[dtype.itemsize]
    size_code = {1: 0, 2: 1, 4: 2, 8: 3}[dtype.itemsize]
    signed = 8 if dtype.kind == "i" else 0
    return 64 + signed + (0 if dtype.itemsize == 1 else 4) + size_code


# -- Dectris compression (tag 56500) --------------------------------------------------------

def decompress(algorithm: str, element_size: int, data: bytes) -> bytes:
    """The byte string a compressed tag stands for (vendor library; clear error otherwise)."""
    from dectris.compression import decompress as vendor_decompress

    if algorithm not in ALGORITHMS:
        raise StreamError(f"compression {algorithm!r} is not supported ({', '.join(ALGORITHMS)})")
    try:
        return bytes(vendor_decompress(data, algorithm, elem_size=element_size))
    except Exception as exc:  # noqa: BLE001 - the library raises plain RuntimeError/ValueError
        raise StreamError(f"corrupt {algorithm} data ({len(data)} bytes): {exc}") from None


def compress(algorithm: str, elements: np.ndarray) -> cbor2.CBORTag:
    """``elements`` as a tag-56500 compressed byte string in the detector's HDF5 framing."""
    raw = np.ascontiguousarray(elements).reshape(-1)
    size = raw.nbytes
    if algorithm == "bslz4":
        block = default_block_size(raw.dtype.itemsize) * raw.dtype.itemsize
        body = _HDF5_HEADER.pack(size, block) + ndarray_compress("bslz4", raw)
        return cbor2.CBORTag(DECTRIS_COMPRESSION, ["bslz4", raw.dtype.itemsize, body])
    if algorithm == "lz4":  # one block holding everything
        packed = ndarray_compress("lz4", raw)
        if len(packed) >= size:  # the framing stores an incompressible block as it is
            packed = raw.tobytes()
        body = _HDF5_HEADER.pack(size, size) + _LZ4_BLOCK_SIZE.pack(len(packed)) + packed
        return cbor2.CBORTag(DECTRIS_COMPRESSION, ["lz4", 0, body])
    raise ValueError(f"unknown compression {algorithm!r}")


# -- messages -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StartMessage:
    series_id: int
    series_unique_id: str
    channels: tuple[str, ...]
    image_size: tuple[int, int]  # (x, y) = (width, height)
    number_of_images: int
    count_time: float
    threshold_energy: Mapping[str, float] = field(default_factory=dict)
    arm_date: datetime.datetime | None = None


@dataclass(frozen=True, slots=True)
class ImageMessage:
    series_id: int
    series_unique_id: str
    image_id: int
    data: Mapping[str, np.ndarray]  # channel -> (height, width) array
    series_date: datetime.datetime | None
    start_time: float  # seconds after series_date
    real_time: float  # exposure, seconds


@dataclass(frozen=True, slots=True)
class EndMessage:
    series_id: int
    series_unique_id: str


Message = Union[StartMessage, ImageMessage, EndMessage]


def _tag_hook(tag: cbor2.CBORTag, immutable: bool) -> Any:
    if tag.tag == DECTRIS_COMPRESSION:
        algorithm, element_size, data = tag.value
        return decompress(str(algorithm), int(element_size), bytes(data))
    if tag.tag == MULTI_DIMENSIONAL_ARRAY:
        dimensions, contents = tag.value
        if not isinstance(contents, np.ndarray):
            raise StreamError("a multidimensional array must hold a typed array")
        if int(np.prod(dimensions)) != contents.size:
            raise StreamError(f"array of {contents.size} elements cannot have dimensions "
                              f"{list(dimensions)}")
        return contents.reshape(tuple(dimensions))
    if 64 <= tag.tag <= 87:
        if not isinstance(tag.value, (bytes, bytearray)):
            raise StreamError(f"typed array tag {tag.tag} must hold a byte string")
        dtype = typed_array_dtype(tag.tag)
        if len(tag.value) % dtype.itemsize:
            raise StreamError(f"typed array of {len(tag.value)} bytes is not a whole number "
                              f"of {dtype} elements")
        return np.frombuffer(tag.value, dtype)
    return tag


def _seconds(rational: Any) -> float:
    numerator, denominator = rational
    return float(Fraction(int(numerator), int(denominator) or 1))


def decode(frame: bytes | memoryview) -> Message:
    """One Stream V2 message; :class:`StreamError` naming the problem when it is malformed."""
    try:
        body = cbor2.loads(frame, tag_hook=_tag_hook)
    except StreamError:
        raise
    except Exception as exc:  # noqa: BLE001 - cbor2 and numpy raise a variety of errors
        cause = exc.__cause__ if isinstance(exc.__cause__, StreamError) else exc
        raise StreamError(f"undecodable message ({len(frame)} bytes): {cause}") from None
    if not isinstance(body, Mapping) or "type" not in body:
        raise StreamError("a message must be a map with a 'type' key")
    kind = body["type"]
    try:
        if kind == "start":
            return _start(body)
        if kind == "image":
            return _image(body)
        if kind == "end":
            return EndMessage(int(body["series_id"]), str(body["series_unique_id"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamError(f"{kind} message: missing or bad field {exc}") from None
    raise StreamError(f"unknown message type {kind!r}")


def _start(body: Mapping[str, Any]) -> StartMessage:
    return StartMessage(
        series_id=int(body["series_id"]), series_unique_id=str(body["series_unique_id"]),
        channels=tuple(str(name) for name in body["channels"]),
        image_size=(int(body["image_size_x"]), int(body["image_size_y"])),
        number_of_images=int(body["number_of_images"]), count_time=float(body["count_time"]),
        threshold_energy={str(k): float(v) for k, v in body.get("threshold_energy", {}).items()},
        arm_date=body.get("arm_date"))


def _image(body: Mapping[str, Any]) -> ImageMessage:
    data = body["data"]
    if not isinstance(data, Mapping) or not all(isinstance(a, np.ndarray) and a.ndim == 2
                                                for a in data.values()):
        raise StreamError("image message: 'data' must map channels to 2-D arrays")
    return ImageMessage(
        series_id=int(body["series_id"]), series_unique_id=str(body["series_unique_id"]),
        image_id=int(body["image_id"]), data=dict(data), series_date=body.get("series_date"),
        start_time=_seconds(body["start_time"]), real_time=_seconds(body["real_time"]))


# -- encoding (the simulator's side) --------------------------------------------------------

def _array(image: np.ndarray, compression: str) -> cbor2.CBORTag:
    image = np.ascontiguousarray(image, image.dtype.newbyteorder("<"))
    contents: Any = image.tobytes() if compression == "none" else compress(compression, image)
    return cbor2.CBORTag(MULTI_DIMENSIONAL_ARRAY,
                         [list(image.shape), cbor2.CBORTag(typed_array_tag(image.dtype), contents)])


def encode(body: Mapping[str, Any], compression: str = "none") -> bytes:
    """A message map as CBOR; ndarrays in ``data`` become (compressed) multidimensional arrays."""
    body = dict(body)
    if "data" in body:
        body["data"] = {name: _array(image, compression) for name, image in body["data"].items()}
    return cbor2.dumps(body, datetime_as_timestamp=False)


def rational(seconds: float, base: int) -> list[int]:
    """``seconds`` in ticks of a ``base`` Hz time base, as the detector states times."""
    return [round(seconds * base), base]
