"""One large message payload read straight from the socket into a buffer of its own
(transport layer, no I/O: both circuits hand out :meth:`free` to ``recv_into``).

Memory follows the bytes, not the header: a header may claim a gigabyte and send nothing, so
the buffer starts at most ``chunk`` bytes beyond what has arrived and doubles only when the
bytes have filled it. A complete payload is handed over as a bytearray of exactly its size,
which numpy wraps without a copy.
"""

from __future__ import annotations

from typing import Any

FIRST_CHUNK = 16 * 1024 * 1024


class LargePayload:
    """The bytes of one payload of ``size`` bytes as they arrive; ``header`` is the message's
    header as its circuit parsed it, kept for when the payload is complete."""

    __slots__ = ("header", "size", "filled", "_buffer", "_view")

    def __init__(self, header: Any, size: int, first: memoryview | bytes):
        self.header = header
        self.size = size
        self.filled = len(first)
        self._buffer = bytearray(min(size, self.filled + FIRST_CHUNK))
        self._buffer[:self.filled] = first
        self._view = memoryview(self._buffer)

    def free(self) -> memoryview:
        """Where the next bytes go."""
        return self._view[self.filled:]

    def received(self, count: int) -> bool:
        """``count`` more bytes are in; True once the payload is complete."""
        self.filled += count
        if self.filled == self.size:
            return True
        if self.filled == len(self._buffer):  # they came: make room for as many again
            grown = bytearray(min(self.size, 2 * self.filled))
            grown[:self.filled] = self._view
            self._view.release()
            self._buffer, self._view = grown, memoryview(grown)
        return False

    def take(self) -> bytearray:
        """The complete payload; this object keeps no view of it (numpy may keep it)."""
        self._view.release()
        payload, self._buffer = self._buffer, bytearray()
        return payload

    def release(self) -> None:
        """Drop the buffer (the circuit closed with the payload half read)."""
        self._view.release()
        self._buffer = bytearray()
