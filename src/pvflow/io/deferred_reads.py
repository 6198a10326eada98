"""The connect-and-flush half of a bulk get, shared by both protocol engines (transport layer).

Channels not connected when the bulk get is called are read as they connect: those whose
connections complete in one loop iteration are read together, grouped by circuit, by the
engine's ``read_group`` (one block of requests and one write per circuit).
"""

from __future__ import annotations

from typing import Any


class DeferredBlockReads:
    """Channels waiting to be read into ``slots`` of ``batch``; the engine reads a group."""

    def __init__(self, loop: Any, form: int, batch: Any):
        self._loop = loop
        self.form = form
        self.batch = batch
        self.slots: dict[Any, int] = {}  # the channels still waiting for a connection
        self.ready: list[Any] = []
        self.reads: list[Any] = []  # the block requests issued, for withdrawing on timeout

    def on_connect(self, channel: Any, on_io_thread: bool) -> None:
        """I/O thread only (registered as an on-connect action)."""
        self.ready.append(channel)
        self._loop.at_end_of_iteration(self, self._flush)

    def _flush(self) -> None:
        ready, self.ready = self.ready, []
        groups: dict[Any, list[Any]] = {}
        for channel in ready:
            groups.setdefault(channel.circuit, []).append(channel)
        for channels in groups.values():
            self.read_group(channels, [self.slots[channel] for channel in channels], True)

    def read_group(self, channels: list[Any], slots: list[int], on_io_thread: bool) -> None:
        raise NotImplementedError
