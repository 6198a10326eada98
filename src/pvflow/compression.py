"""Image compression: lz4 and bitshuffle+lz4 ("bslz4") as areaDetector's NDPluginCodec writes
them (codec layer, no I/O; the ``lz4`` package does the LZ4 blocks). Shared by the pvAccess
engine (NTNDArray) and the detector backends, so it belongs to neither.

lz4: one raw LZ4 block, no frame, of ``uncompressedSize`` bytes. bslz4: bitshuffle's
``bshuf_compress_lz4`` layout with the default block size: per block a big-endian uint32 of the
compressed size then an LZ4 block of the bit-transposed elements; a last, shorter block of a
multiple of 8 elements; the final ``count % 8`` elements copied raw.
"""

from __future__ import annotations

import struct

import numpy as np

from .errors import RemoteProtocolError

TARGET_BLOCK_BYTES = 8192
_BLOCK_SIZE = struct.Struct(">I")


def default_block_size(element_size: int) -> int:
    """bitshuffle's ``bshuf_default_block_size``: ~8 KiB, a multiple of 8 elements, >= 128."""
    return max(TARGET_BLOCK_BYTES // element_size // 8 * 8, 128)


def _lz4_block(data: bytes | memoryview, size: int) -> bytes:
    import lz4.block  # type: ignore[import-untyped]

    try:
        return bytes(lz4.block.decompress(data, uncompressed_size=size))
    except lz4.block.LZ4BlockError as exc:
        raise RemoteProtocolError(f"corrupt LZ4 data: {exc}") from None


def unshuffle(raw: np.ndarray, count: int, element_size: int) -> np.ndarray:
    """Undo bitshuffle on ``blocks`` x ``count`` elements laid end to end (count % 8 == 0)."""
    planes = raw.reshape(-1, element_size, 8, count // 8)
    bits = np.unpackbits(planes, axis=3, bitorder="little")  # [block][byte][bit][element]
    return np.packbits(bits.transpose(0, 3, 1, 2), axis=3, bitorder="little").reshape(-1)


def shuffle(raw: np.ndarray, count: int, element_size: int) -> np.ndarray:
    """bitshuffle of ``count`` elements (count % 8 == 0): the inverse of :func:`unshuffle`."""
    elements = raw.reshape(-1, count, element_size, 1)
    bits = np.unpackbits(elements, axis=3, bitorder="little")  # [block][element][byte][bit]
    return np.packbits(bits.transpose(0, 2, 3, 1), axis=3, bitorder="little").reshape(-1)


def decompress(codec: str, data: np.ndarray, dtype: np.dtype, size: int) -> np.ndarray:
    """The uncompressed elements (``size`` bytes) of ``data`` compressed with ``codec``."""
    raw = np.ascontiguousarray(data).view(np.uint8)
    if codec == "lz4":
        out = np.frombuffer(_lz4_block(raw.data, size), np.uint8)
    elif codec == "bslz4":
        out = _bslz4(raw, size, dtype.itemsize)
    else:
        raise RemoteProtocolError(f"NTNDArray codec {codec!r} is not supported (lz4, bslz4 are)")
    if out.size != size or size % dtype.itemsize:
        raise RemoteProtocolError(f"{codec} data decompressed to {out.size} bytes, not {size}")
    return out.view(dtype)


def _bslz4(raw: np.ndarray, size: int, element_size: int) -> np.ndarray:
    count = size // element_size
    block = default_block_size(element_size)
    out = np.empty(size, np.uint8)
    view = raw.data
    offset = 0
    position = 0

    def blocks(elements: int, number: int) -> None:
        nonlocal offset, position
        nbytes = elements * element_size
        chunks = []
        for _ in range(number):
            if offset + 4 > len(raw):
                raise RemoteProtocolError("bslz4 data ends inside a block header")
            (compressed,) = _BLOCK_SIZE.unpack_from(view, offset)
            offset += 4
            if offset + compressed > len(raw):
                raise RemoteProtocolError("bslz4 block runs past the end of the data")
            chunks.append(_lz4_block(view[offset:offset + compressed], nbytes))
            offset += compressed
        if chunks:
            shuffled = np.frombuffer(b"".join(chunks), np.uint8)
            out[position:position + number * nbytes] = unshuffle(shuffled, elements, element_size)
            position += number * nbytes

    blocks(block, count // block)
    last = count % block // 8 * 8
    blocks(last, 1 if last else 0)
    leftover = size - position
    if leftover:
        out[position:] = raw[offset:offset + leftover]
    return out


def compress(codec: str, elements: np.ndarray) -> bytes:
    """``elements`` compressed as NDPluginCodec does (for test servers and round trips)."""
    import lz4.block

    raw = np.ascontiguousarray(elements).reshape(-1).view(np.uint8)
    if codec == "lz4":
        return bytes(lz4.block.compress(raw.tobytes(), store_size=False))
    if codec != "bslz4":
        raise ValueError(f"unknown codec {codec!r}")
    element_size = elements.dtype.itemsize
    count = raw.size // element_size
    block = default_block_size(element_size)
    parts: list[bytes] = []
    position = 0
    for elements_in_block in [block] * (count // block) + [count % block // 8 * 8]:
        if not elements_in_block:
            continue
        nbytes = elements_in_block * element_size
        shuffled = shuffle(raw[position:position + nbytes], elements_in_block, element_size)
        packed = lz4.block.compress(shuffled.tobytes(), store_size=False)
        parts.append(_BLOCK_SIZE.pack(len(packed)) + packed)
        position += nbytes
    parts.append(raw[position:].tobytes())
    return b"".join(parts)
