"""One large message payload read straight from the socket into a buffer of its own
(transport layer, no I/O: both circuits hand out :meth:`free` to ``recv_into``).

Memory follows the bytes, not the header: a header may claim a gigabyte and send nothing, so
the buffer starts at most ``chunk`` bytes beyond what has arrived and doubles only when the
bytes have filled it. A complete payload is handed over as a buffer of exactly its size,
which numpy wraps without a copy.

Buffers are ``np.empty``: the socket fills every byte, so zero-filling one (``bytearray(n)``
writes all n bytes, ~0.2 ms for a 4 MB image) is wasted. A :class:`PayloadRecycler` per
circuit takes back the buffers it handed out and gives one out again only when nothing else
refers to it any more (the arrays decoded from it are gone): an image stream of one size then
reuses two or three buffers, pages already mapped, instead of a fresh allocation per image.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

FIRST_CHUNK = 16 * 1024 * 1024
# Delivered buffers a circuit keeps for reuse: a consumer holding one image while the next
# arrives needs two; more only hold memory.
RECYCLED_BUFFERS = 3


def _empty(size: int) -> np.ndarray:
    return np.empty(size, dtype=np.uint8)


class PayloadRecycler:
    """The buffers a circuit handed out, reused once their consumers have let them go.

    Owned by one circuit and used on its I/O thread only. A buffer is free when this list
    holds the only reference to it: every array decoded from it (``np.frombuffer`` keeps its
    base alive) is gone, so nothing can see it being overwritten.
    """

    __slots__ = ("_buffers",)

    def __init__(self) -> None:
        self._buffers: list[np.ndarray] = []

    def take(self, size: int) -> np.ndarray:
        """A buffer of ``size`` bytes, contents undefined."""
        buffers = self._buffers
        for index in range(len(buffers)):
            # two references: the list's and getrefcount's argument
            if len(buffers[index]) == size and sys.getrefcount(buffers[index]) == 2:
                return buffers.pop(index)
        return _empty(size)

    def keep(self, buffer: np.ndarray) -> None:
        """Remember a buffer just handed to a consumer; the oldest beyond the limit is
        dropped (the consumer may keep it as long as it likes)."""
        self._buffers.append(buffer)
        if len(self._buffers) > RECYCLED_BUFFERS:
            del self._buffers[0]


class LargePayload:
    """The bytes of one payload of ``size`` bytes as they arrive; ``header`` is the message's
    header as its circuit parsed it, kept for when the payload is complete."""

    __slots__ = ("header", "size", "filled", "_buffer", "_view", "_recycler")

    def __init__(self, header: Any, size: int, first: memoryview | bytes,
                 recycler: PayloadRecycler | None = None):
        self.header = header
        self.size = size
        self.filled = len(first)
        self._recycler = recycler
        length = min(size, self.filled + FIRST_CHUNK)
        self._buffer = recycler.take(length) if recycler is not None and length == size \
            else _empty(length)
        self._buffer[:self.filled] = np.frombuffer(first, dtype=np.uint8)
        self._view = self._buffer.data

    def free(self) -> memoryview:
        """Where the next bytes go."""
        return self._view[self.filled:]

    def received(self, count: int) -> bool:
        """``count`` more bytes are in; True once the payload is complete."""
        self.filled += count
        if self.filled == self.size:
            return True
        if self.filled == len(self._buffer):  # they came: make room for as many again
            grown = _empty(min(self.size, 2 * self.filled))
            grown[:self.filled] = self._buffer
            self._view.release()
            self._buffer, self._view = grown, grown.data
        return False

    def take(self) -> np.ndarray:
        """The complete payload (``uint8``); this object keeps no view of it, numpy may keep
        it as long as it likes: the recycler reuses it only once nothing refers to it."""
        self._view.release()
        payload, self._buffer = self._buffer, _empty(0)
        if self._recycler is not None:
            self._recycler.keep(payload)
        return payload

    def release(self) -> None:
        """Drop the buffer (the circuit closed with the payload half read)."""
        self._view.release()
        self._buffer = _empty(0)
