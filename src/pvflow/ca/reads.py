"""Channel Access's read tactics (transport layer): block reads of many channels under one
range of ioids, plans that repeat them, and control readings joined from two reads.

CA has no single request for "everything": DBR_CTRL carries limits, units and enum choices
but no timestamp, DBR_TIME the timestamp but no limits. A control reading is therefore a CTRL
and a TIME read of the same channel, issued together and merged into one Reading.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from ..errors import DisconnectedError
from ..io.contract import Form, Sink, Slots
from ..io.deferred_reads import DeferredBlockReads
from . import protocol
from .channel import BulkRead, Channel
from .dbr import DECODERS, PLAIN_SCALARS
from .dbr import Form as DbrForm

if TYPE_CHECKING:
    from .client import CAClient

DBR_FORMS = {Form.VALUE: DbrForm.PLAIN, Form.STATUS: DbrForm.STS, Form.TIME: DbrForm.TIME,
             Form.GRAPHIC: DbrForm.GR, Form.CONTROL: DbrForm.CTRL}
"""The DBR family of each form: ``dbr_type = family + native``."""


class BlockPlan:
    """All of a block read of fixed channels except its ioids, reusable while the client's
    ``topology`` (bumped on every connect, disconnect and release) stays the same.

    Bulk reads of the same list again and again are the common pattern (a flyer collecting
    its waveforms, an optimiser reading its observables): with a plan, each repetition costs
    one ioid allocation, one dict update and one numpy column write.
    """

    def __init__(self, client: CAClient, channels: list[Channel], form: int, slots: list[int]):
        circuit = channels[0].circuit
        if circuit is None:
            raise DisconnectedError(f"{channels[0].name} is not connected", pv=channels[0].name)
        self.client = client
        self.topology = client.topology
        self.circuit = circuit
        self.channels = channels
        self.slots = slots
        self.reading = form != DbrForm.PLAIN
        types = [form + channel.native for channel in channels]
        self.as_arrays = [channel.count != 1 for channel in channels]
        self.decoders = [DECODERS[data_type] for data_type in types]
        self.scalars = [None if array else PLAIN_SCALARS[data_type]
                        for data_type, array in zip(types, self.as_arrays)]
        # count 0 asks for the current length of an array (servers of protocol 4.13 and up)
        self.frames = protocol.read_notify_frames(types, [not array for array in self.as_arrays],
                                                  [channel.sid for channel in channels])

    @property
    def valid(self) -> bool:
        return self.topology == self.client.topology and not self.circuit.closed

    def register(self, batch: Slots) -> tuple[BulkRead, bytes]:
        """Put a fresh block of ioids in flight on the circuit; return it and its frames."""
        count = len(self.channels)
        base = self.client.allocate_ids(count)
        request = BulkRead(base, self.channels, self.decoders, self.as_arrays, self.reading,
                           self.slots, batch, self.scalars)
        self.circuit.pending.update(zip(range(base, base + count), itertools.repeat(request)))
        return request, protocol.with_ioids(self.frames, base)

    def send(self, batch: Slots) -> BulkRead:
        request, frames = self.register(batch)
        self.circuit.send_now(frames)
        return request


class DeferredReads(DeferredBlockReads):
    """The reads of one bulk get, issued in ioid blocks per circuit (CA's ``read_group``)."""

    def __init__(self, client: CAClient, form: int, batch: Slots):
        super().__init__(client.loop, client, batch)
        self.client = client
        self.family = form  # the DBR family to read

    def read_group(self, channels: list[Channel], slots: list[int], on_io_thread: bool) -> None:
        client = self.client
        connection = client.connection_of(channels[0])
        try:
            if connection is None:
                raise DisconnectedError(f"{channels[0].name} lost its circuit",
                                        pv=channels[0].name)
            request, frames = BlockPlan(client, channels, self.family, slots).register(
                self.batch)
            self.reads.append(request)
            if on_io_thread:
                connection.circuit.queue(frames)
                client.loop.at_end_of_iteration(connection, connection.flush)
            else:
                connection.send(frames)
        except DisconnectedError as error:
            for slot in slots:
                client.loop.call_soon(self.batch.set, slot, error)


class JoinedSlots:
    """Bulk control reads: per slot a CTRL and a TIME reading, merged into one Reading for
    the batch. Filled on the I/O thread only, like the batch itself."""

    __slots__ = ("target", "first")

    def __init__(self, target: Slots):
        self.target = target
        self.first: dict[int, Any] = {}

    def set(self, index: int, value: Any) -> None:
        earlier = self.first.pop(index, None)
        if earlier is None:
            self.first[index] = value
        elif isinstance(earlier, BaseException) or isinstance(value, BaseException):
            self.target.set(index, earlier if isinstance(earlier, BaseException) else value)
        else:
            self.target.set(index, earlier.merged(value))


class JoinedReading:
    """Merge a CTRL reading (metadata) and a TIME reading (timestamp) into one Reading."""

    __slots__ = ("parts", "sink")

    def __init__(self, sink: Sink):
        self.parts: list[Any] = []
        self.sink = sink

    def part(self, value: Any) -> None:
        self.parts.append(value)
        if len(self.parts) == 2:
            errors = [part for part in self.parts if isinstance(part, BaseException)]
            self.sink(errors[0] if errors else self.parts[0].merged(self.parts[1]))
