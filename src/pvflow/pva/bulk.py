"""Bulk gets on the PVA engine: one write of GET frames per circuit (transport layer).

Connected channels are read at once from the caller's thread; the others join a group read
as they connect (those whose CREATE_CHANNEL answers arrive in one loop iteration go together).
Each read goes through the channel's persistent GET operation, so a repeated bulk get is one
EXEC per channel, all in one write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DisconnectedError
from ..io.contract import Form, Slots
from ..io.deferred_reads import DeferredBlockReads
from .channel import Channel
from .operations import FULL_REQUEST, TIME_REQUEST, VALUE_REQUEST

if TYPE_CHECKING:
    from .client import PVAClient

# GETs sent from the caller's thread in writes of this many: the server starts on the first
# while the rest are made (a qsrv takes ~10 µs a GET, longer than making one)
SEND_EVERY = 16

# the GET's pvRequest per form: a structure's alarm and timestamp come together, and its
# display and control metadata with everything else
REQUESTS = {Form.VALUE: VALUE_REQUEST, Form.STATUS: TIME_REQUEST, Form.TIME: TIME_REQUEST,
            Form.GRAPHIC: FULL_REQUEST, Form.CONTROL: FULL_REQUEST}


class BulkRead:
    """The reads of one bulk call on one circuit, under a block of consecutive tokens."""

    __slots__ = ("base", "channels", "slots")

    def __init__(self, base: int, channels: list[Channel], slots: list[int]):
        self.base = base
        self.channels = channels
        self.slots = slots


class DeferredReads(DeferredBlockReads):
    """A bulk get: connected channels read at once, the others in groups as they connect."""

    def __init__(self, client: PVAClient, form: Form, batch: Slots, as_string: bool = False):
        super().__init__(client.loop, client, batch)  # no plan: PVA's GETs persist instead
        self.client = client
        self.form = form
        self.as_string = as_string

    def read_group(self, channels: list[Channel], slots: list[int], on_io_thread: bool) -> None:
        client = self.client
        batch = self.batch
        base = client.allocate_ids(len(channels))
        self.reads.append(BulkRead(base, channels, slots))
        text = REQUESTS[self.form]
        reading = self.form is not Form.VALUE
        frames: list[bytes] = []
        for position, (channel, slot) in enumerate(zip(channels, slots)):
            circuit = channel.circuit
            if circuit is None:
                client.loop.call_soon(batch.set, slot, DisconnectedError(
                    f"{channel.name} lost its circuit", pv=channel.name))
                continue
            with channel.lock:
                operation = channel.get_operation(text, reading)
                frames.append(operation.request(circuit, (base + position, _Slot(batch, slot),
                                                          self.as_string)))
            if len(frames) == SEND_EVERY and not on_io_thread:
                if not self._send(channels[0], frames, on_io_thread, slots):
                    return
                frames = []
        if frames:
            self._send(channels[0], frames, on_io_thread, slots)

    def _send(self, channel: Channel, frames: list[bytes], on_io_thread: bool,
              slots: list[int]) -> bool:
        """False, and every slot not answered yet failed, when the circuit is gone."""
        try:
            self.client.send(channel, b"".join(frames), on_io_thread)
        except DisconnectedError as error:
            for slot in slots:
                self.client.loop.call_soon(self.batch.set, slot, error)
            return False
        return True


class _Slot:
    """A sink filling one slot of a batch (cheaper than a closure per read)."""

    __slots__ = ("batch", "slot")

    def __init__(self, batch: Slots, slot: int):
        self.batch = batch
        self.slot = slot

    def __call__(self, value: Any) -> None:
        self.batch.set(self.slot, value)
