"""The connect-and-flush half of a bulk get, shared by both protocol engines (transport layer).

Channels not connected when the bulk get is called are read as they connect: those whose
connections complete in one loop iteration are read together, grouped by circuit, by the
engine's ``read_group`` (one block of requests and one write per circuit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .contract import ReadPlan, Slots
from .loop import IOLoop
from .requests import Cancels


class BlockOfReads(Protocol):
    """Reads of ``channels`` into ``slots`` under request ids ``base``, ``base + 1``, ..."""

    base: int

    @property
    def channels(self) -> Sequence[Any]: ...

    @property
    def slots(self) -> Sequence[int]: ...


class DeferredBlockReads:
    """Channels waiting to be read into ``slots`` of ``batch``; the engine reads a group."""

    def __init__(self, loop: IOLoop, engine: Cancels, batch: Slots):
        self._loop = loop
        self.engine = engine
        self.batch = batch
        self.slots: dict[Any, int] = {}  # the channels still waiting for a connection
        self.ready: list[Any] = []
        self.reads: list[BlockOfReads] = []  # the block requests issued, for withdrawing
        self.plan: ReadPlan | None = None  # set by an engine that can repeat these reads

    def on_connect(self, channel: Any, on_io_thread: bool) -> None:
        """I/O thread only (registered as an on-connect action)."""
        if not self.ready:
            self._loop.at_end_of_iteration(self, self._flush)
        self.ready.append(channel)

    def _flush(self) -> None:
        ready, self.ready = self.ready, []
        groups: dict[Any, list[Any]] = {}
        for channel in ready:
            group = groups.get(channel.circuit)
            if group is None:
                group = groups[channel.circuit] = []
            group.append(channel)
        slot_of = self.slots.__getitem__
        for channels in groups.values():
            self.read_group(channels, list(map(slot_of, channels)), True)

    def read_group(self, channels: list[Any], slots: list[int], on_io_thread: bool) -> None:
        raise NotImplementedError

    def withdraw(self, slots: list[int]) -> None:
        """Cancel the reads of ``slots`` in flight and stop waiting for their channels."""
        wanted = set(slots)
        engine = self.engine
        for read in list(self.reads):
            for position, slot in enumerate(read.slots):
                if slot in wanted:
                    engine.cancel(read.channels[position], read.base + position)
        for channel, slot in list(self.slots.items()):
            if slot in wanted:
                engine.forget_action(channel, self.on_connect)
