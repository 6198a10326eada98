"""Channels, requests and subscriptions as the CA engine tracks them (transport layer, no I/O).

A channel is shared by every user of a name in a process; what differs per user (a get, a
subscription) is a request or a subscription object hanging off it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import PutError, RemoteProtocolError
from ..io.channel_failure import ChannelFailure
from ..io.channels import (NO_ACTIONS, NO_SUBSCRIPTIONS, NO_WATCHERS, SEARCHING, Actions,
                           ChannelBase, ChannelState)
from ..io.delivery import Mailbox
from .dbr import NATIVES, Decoder, Native
from .protocol import describe_status, pad_string

if TYPE_CHECKING:
    from .circuit import Circuit


DOUBLE = Native.DOUBLE  # a module global: see io/channels.py's SEARCHING


class Channel(ChannelBase):
    """One PV name on one server; survives reconnects (same cid, new sid)."""

    __slots__ = ("name", "wire_name", "cid", "state", "circuit", "sid", "native", "count", "access",
                 "subscriptions", "watchers", "on_connect", "enum_strings", "search_attempt",
                 "search_due", "failure")

    def __init__(self, name: str, cid: int):
        self.name = name
        self.wire_name = pad_string(name)  # searched and created under it, maybe many times
        self.cid = cid
        self.state: ChannelState = SEARCHING
        self.circuit: Circuit | None = None
        self.sid = 0
        self.native: Native = DOUBLE
        self.count = 1
        self.access = 0
        self.subscriptions: Mapping[int, Subscription] = NO_SUBSCRIPTIONS
        self.watchers: Sequence[Mailbox] = NO_WATCHERS  # connection and access-rights listeners
        # actions run on the I/O thread the moment the channel connects (pipelined connect+get)
        self.on_connect: Actions = NO_ACTIONS
        self.enum_strings: tuple[str, ...] = ()
        self.search_attempt = 0
        self.search_due = 0.0
        self.failure: ChannelFailure | None = None  # set while the server refuses the channel

    def created(self, native: int, count: int, sid: int) -> None:
        """The server created this channel (again): its type may have changed since."""
        if self.native != native:
            self.enum_strings = ()
        self.native = NATIVES[native]
        self.count = count
        self.sid = sid


class ReadRequest:
    """A READ_NOTIFY in flight: decodes the answer and hands it to ``sink``."""

    __slots__ = ("decoder", "as_array", "reading", "sink", "channel")

    def __init__(self, channel: Channel, decoder: Decoder, as_array: bool, reading: bool,
                 sink: Callable[[Any], None]):
        self.channel = channel
        self.decoder = decoder
        self.as_array = as_array
        self.reading = reading
        self.sink = sink

    def channel_of(self, ioid: int) -> Channel:
        return self.channel

    def complete(self, ioid: int, buffer: Any, start: int, stop: int, count: int,
                 owned: bool) -> None:
        if self.reading:
            self.sink(self.decoder.reading(buffer, start, stop, count, self.as_array, owned))
        else:
            self.sink(self.decoder.value(buffer, start, stop, count, self.as_array, owned))

    def fail(self, ioid: int, error: BaseException) -> None:
        self.sink(error)


class BulkRead:
    """Reads of many channels on one circuit under one contiguous block of ioids.

    One object for the whole block (the slot is ``ioid - base``) instead of one request per
    channel: registering 1000 reads is then a single ``dict.update`` and each answer costs
    one subtraction to find its slot. Plain numeric scalars, nearly every answer of a bulk
    read, are unpacked here directly rather than through their decoder.
    """

    __slots__ = ("base", "channels", "decoders", "as_arrays", "reading", "slots", "batch",
                 "scalars")

    def __init__(self, base: int, channels: list[Channel], decoders: list[Decoder],
                 as_arrays: list[bool], reading: bool, slots: list[int], batch: Any,
                 scalars: list[Any]):
        self.base = base
        self.channels = channels
        self.decoders = decoders
        self.as_arrays = as_arrays
        self.reading = reading
        self.slots = slots
        self.batch = batch
        self.scalars = scalars  # per channel: a numeric scalar's struct, or None

    plan = None  # (a plan sent it: the caller holds that plan already)

    def channel_of(self, ioid: int) -> Channel:
        return self.channels[ioid - self.base]

    def withdraw(self, slots: list[int]) -> None:
        """Forget the reads of ``slots`` still in flight."""
        wanted = set(slots)
        for position, slot in enumerate(self.slots):
            circuit = self.channels[position].circuit
            if slot in wanted and circuit is not None:
                circuit.pending.pop(self.base + position, None)

    def complete(self, ioid: int, buffer: Any, start: int, stop: int, count: int,
                 owned: bool) -> None:
        position = ioid - self.base
        scalar = self.scalars[position]
        if scalar is not None and count == 1 and stop - start >= scalar.size:
            value = scalar.unpack_from(buffer, start)[0]
        elif self.reading:
            value = self.decoders[position].reading(buffer, start, stop, count,
                                                    self.as_arrays[position], owned)
        else:
            value = self.decoders[position].value(buffer, start, stop, count,
                                                  self.as_arrays[position], owned)
        self.batch.set(self.slots[position], value)

    def fail(self, ioid: int, error: BaseException) -> None:
        self.batch.set(self.slots[ioid - self.base], error)


class WriteRequest:
    """A WRITE_NOTIFY in flight: completes with ``None`` or a ``PutError`` naming the PV."""

    __slots__ = ("channel", "value", "sink")

    def __init__(self, channel: Channel, value: Any, sink: Callable[[Any], None]):
        self.channel = channel
        self.value = value
        self.sink = sink

    def channel_of(self, ioid: int) -> Channel:
        return self.channel

    def complete(self, ioid: int, buffer: Any, start: int, stop: int, count: int,
                 owned: bool) -> None:
        raise RemoteProtocolError(f"the server answered the put to {self.channel.name} with "
                                  f"read data", pv=self.channel.name)

    def complete_status(self, status: int) -> None:
        if status == 1:
            self.sink(None)
        else:
            self.sink(PutError(f"put of {self.value!r} to {self.channel.name} failed: "
                               f"{describe_status(status)}", pv=self.channel.name,
                               address=self.channel.address()))

    def fail(self, ioid: int, error: BaseException) -> None:
        self.sink(error)


class Subscription:
    """A monitor: survives reconnects; its updates go through a :class:`Mailbox`."""

    __slots__ = ("subscription_id", "channel", "form", "mask", "reading", "mailbox", "closed",
                 "decoder", "as_string", "unsigned")

    def __init__(self, subscription_id: int, channel: Channel, form: int, mask: int,
                 reading: bool, mailbox: Mailbox, as_string: bool = False,
                 unsigned: Native | None = None):
        self.subscription_id = subscription_id
        self.as_string = as_string
        self.unsigned = unsigned  # the signed type to ask for, its bits read as unsigned
        self.channel = channel
        self.form = form
        self.mask = mask
        self.reading = reading
        self.mailbox = mailbox
        self.closed = False
        self.decoder: Decoder | None = None  # set per connection: the native type may change

    def deliver(self, buffer: Any, start: int, stop: int, count: int, owned: bool) -> None:
        decoder = self.decoder
        if decoder is None:
            return
        as_array = self.channel.count != 1
        if self.reading:
            self.mailbox.post(decoder.reading(buffer, start, stop, count, as_array, owned))
        else:
            self.mailbox.post(decoder.value(buffer, start, stop, count, as_array, owned))
