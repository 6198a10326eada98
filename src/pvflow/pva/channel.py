"""Channels as the PVA engine tracks them (transport layer, no I/O).

A channel is shared by every user of a name in a Context. It keeps its server-side operations
across calls: one GET per request shape (value, time, everything), one PUT, so that after the
first use a get or a put is one round trip, not INIT + EXEC + DESTROY as in p4p.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..io.channel_failure import ChannelFailure
from ..io.channels import (NO_ACTIONS, NO_SUBSCRIPTIONS, NO_WATCHERS, SEARCHING, Actions,
                           ChannelBase, ChannelState)
from ..io.delivery import Mailbox

from .operations import GetOperation

if TYPE_CHECKING:
    from .circuit import Circuit
    from .operations import MonitorOperation, PutOperation


class Channel(ChannelBase):
    """One PV name on one server; survives reconnects (same cid, new sid, new operations)."""

    kind = "PVA Channel"

    __slots__ = ("name", "cid", "state", "circuit", "sid", "first_get_text", "first_get",
                 "other_gets", "puts", "subscriptions", "watchers", "on_connect",
                 "search_attempt", "search_due", "lock", "field_type", "failure")

    def __init__(self, name: str, cid: int, lock: threading.Lock | None = None):
        self.name = name
        self.cid = cid
        self.state: ChannelState = SEARCHING
        self.circuit: Circuit | None = None
        self.sid = 0
        # GET operations by pvRequest text: the first in slots of its own (most channels never
        # have another, and a dict per channel is one more object for the garbage collector)
        self.first_get_text = ""
        self.first_get: GetOperation | None = None
        self.other_gets: dict[str, GetOperation] | None = None
        self.puts: dict[bool, PutOperation] = {}  # by whether it waits for processing
        self.subscriptions: Mapping[int, MonitorOperation] = NO_SUBSCRIPTIONS
        self.watchers: Sequence[Mailbox] = NO_WATCHERS
        self.on_connect: Actions = NO_ACTIONS
        self.search_attempt = 0
        self.search_due = 0.0
        # guards the request queues of its operations; an engine's channels share a few
        # (see ChannelLocks)
        self.lock = lock if lock is not None else threading.Lock()
        self.field_type: Any = None  # from GET_FIELD or the first INIT: what `info` shows
        self.failure: ChannelFailure | None = None  # set while the server refuses the channel

    def get_operation(self, text: str, reading: bool) -> GetOperation:
        """The GET operation of pvRequest ``text``, made on first use (lock held)."""
        first = self.first_get
        if first is None:
            self.first_get_text = text
            first = self.first_get = GetOperation(self, text, reading)
            return first
        if self.first_get_text == text:
            return first
        others = self.other_gets
        if others is None:
            others = self.other_gets = {}
        operation = others.get(text)
        if operation is None:
            operation = others[text] = GetOperation(self, text, reading)
        return operation

    def get_operations(self) -> list[GetOperation]:
        first = self.first_get
        operations = [] if first is None else [first]
        if self.other_gets:
            operations.extend(self.other_gets.values())
        return operations


class ChannelLocks:
    """The locks an engine's channels share, one picked by cid. Each guards a few appends and
    swaps of a request queue and is never held with another channel's; one lock per channel
    would be, at a hundred thousand channels, as many more objects for every full garbage
    collection to walk."""

    def __init__(self, count: int = 64):
        self._locks = tuple(threading.Lock() for _ in range(count))

    def new_channel(self, name: str, cid: int) -> Channel:
        return Channel(name, cid, self._locks[cid % len(self._locks)])
