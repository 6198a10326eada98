"""The channel table both protocol engines keep: channels by name and by client id, created in
batches, and one id counter for everything an engine numbers (transport layer).

Creating a thousand channels is one pass under one lock and one hand-over to the I/O thread:
a hand-over per channel would make the caller and the I/O thread fight for the GIL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar, Union

from ..errors import PVFlowError
from .channel_failure import ChannelFailure
from .delivery import AccessChange, ConnectionChange, Mailbox
from .loop import IOLoop

Action = Callable[[Any, bool], None]  # (channel, on_io_thread)
FULL_ACCESS = AccessChange(True, True)


class ChannelState(Enum):
    """Where a channel is in its life, the same for every protocol."""

    SEARCHING = "searching"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"  # the server could not give us this channel; searched again when asked
    CLOSED = "closed"


# A member looked up on its Enum class goes through the metaclass (77 ns in Python 3.11, against
# 6 ns for a module global): the paths taken once per channel or per request use these.
SEARCHING = ChannelState.SEARCHING
CONNECTING = ChannelState.CONNECTING
CONNECTED = ChannelState.CONNECTED
FAILED = ChannelState.FAILED
CLOSED = ChannelState.CLOSED


class NamedChannel(Protocol):
    name: str
    cid: int
    state: ChannelState
    circuit: Any  # the protocol's circuit while connecting or connected, else None
    on_connect: Actions  # run by the I/O thread the moment the channel connects
    watchers: Sequence[Mailbox]
    subscriptions: Mapping[int, Any]  # the channel's monitors by id; they survive reconnections
    failure: ChannelFailure | None  # set while the server refuses the channel
    search_attempt: int  # the search schedule's bookkeeping
    search_due: float

    @property
    def connected(self) -> bool: ...

    def address(self) -> str | None: ...  # host:port of its server while it has a circuit


ChannelT = TypeVar("ChannelT", bound=NamedChannel)

# A channel's watchers and subscriptions are replaced, never changed in place (under the
# table's lock): any thread may iterate them without a lock, and the many channels that have
# none share these empty ones instead of holding two containers each for the garbage
# collector to walk (it walks every one, in every full collection, at 100 000 channels).
NO_WATCHERS: tuple[Mailbox, ...] = ()
NO_SUBSCRIPTIONS: Mapping[int, Any] = MappingProxyType({})
# The same for the actions waiting on a connection: none (the shared empty tuple) or a list of
# the channel's own, changed in place under the lock; every connected channel has none.
Actions = Union[list[Action], tuple[()]]
NO_ACTIONS: tuple[()] = ()
MAX_NAME = 4000  # characters in a PV name


def add_action(channel: NamedChannel, action: Action) -> None:
    actions = channel.on_connect
    if isinstance(actions, list):
        actions.append(action)
    else:
        channel.on_connect = [action]


def add_subscription(channel: NamedChannel, key: int, subscription: Any) -> None:
    current = channel.subscriptions
    # ``**`` on the shared empty proxy walks the generic mapping protocol: most channels
    # get their first subscription here, so that case is a plain dict
    channel.subscriptions = {**current, key: subscription} if current else {key: subscription}


def remove_subscription(channel: NamedChannel, key: int) -> None:
    if key in channel.subscriptions:
        channel.subscriptions = {other: subscription for other, subscription
                                 in channel.subscriptions.items() if other != key} \
            or NO_SUBSCRIPTIONS


class ChannelBase:
    """What every protocol's channel answers the same way; the protocol's class holds the
    slots (``state``, ``circuit``, ``name``, ``cid``)."""

    __slots__ = ()
    kind = "Channel"  # how ``repr`` names it
    state: ChannelState
    circuit: Any
    name: str
    cid: int

    @property
    def connected(self) -> bool:
        # Not on a closed circuit: closing fails the requests in flight before the I/O thread
        # marks the channel, and a caller woken by that failure must wait for the reconnection.
        return self.state is CONNECTED and not self.circuit.closed

    def address(self) -> str | None:
        circuit = self.circuit
        return circuit.address_text if circuit is not None else None

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} cid={self.cid} {self.state.value}>"


class ChannelTable(Generic[ChannelT]):
    """Channels by name and cid; ``lock`` also guards the engine's channel state changes."""

    def __init__(self, loop: IOLoop, factory: Callable[[str, int], ChannelT],
                 begin_search: Callable[[list[ChannelT]], None], id_limit: int):
        self.loop = loop
        self.lock = threading.Lock()
        self.by_name: dict[str, ChannelT] = {}
        self.by_cid: dict[int, ChannelT] = {}
        self.closed = False
        self._factory = factory
        self._begin_search = begin_search  # run on the I/O thread with the new channels
        self._id_limit = id_limit
        self._next_id = 1
        self._id_lock = threading.Lock()
        self._unsearched: list[ChannelT] = []  # created, waiting for the I/O thread

    def channel(self, name: str) -> ChannelT:
        """The channel of ``name``, made if new: the one-name twin of ``channels`` (scripts
        make their PVs one at a time, thousands of them)."""
        found = self.by_name.get(name)
        if found is not None:
            return found
        if self.closed:
            raise PVFlowError("the Context is closed")
        _check_name(name)
        with self.lock:
            found = self.by_name.get(name)
            if found is not None:
                return found
            cid = self.allocate_ids(1)
            found = self.by_name[name] = self._factory(name, cid)
            self.by_cid[cid] = found
            first = not self._unsearched
            self._unsearched.append(found)
        if first:
            self.loop.call_soon(self._search_new)
        return found

    def channels(self, names: Iterable[str]) -> list[ChannelT]:
        """The channels of ``names``, creating the missing ones (which then start searching):
        all checked before any is made, their ids taken as one block."""
        if self.closed:
            raise PVFlowError("the Context is closed")
        names = names if isinstance(names, list) else list(names)
        with self.lock:
            by_name = self.by_name
            missing = [name for name in dict.fromkeys(names) if name not in by_name]
            _check_names(missing)
            first = bool(missing) and not self._unsearched
            if missing:
                start = self.allocate_ids(len(missing))
                cids = range(start, start + len(missing))
                new = list(map(self._factory, missing, cids))
                by_name.update(zip(missing, new))
                self.by_cid.update(zip(cids, new))
                self._unsearched.extend(new)
            found = [by_name[name] for name in names]
        if first:  # channels made one by one (ophyd's get_pv) search as one batch
            self.loop.call_soon(self._search_new)
        return found

    def _search_new(self) -> None:
        with self.lock:
            new, self._unsearched = self._unsearched, []
        self._begin_search(new)

    def forget(self, channels: Iterable[ChannelT]) -> list[ChannelT]:
        """Drop ``channels`` from the table; the ones that were still in it."""
        dropped = []
        with self.lock:
            for channel in channels:
                if self.by_name.get(channel.name) is channel:
                    del self.by_name[channel.name]
                    self.by_cid.pop(channel.cid, None)
                    dropped.append(channel)
        return dropped

    def when_connected(self, channel: ChannelT, action: Action) -> Action | None:
        """Run ``action`` now if connected (returns None), else on connect (returns it)."""
        with self.lock:
            if not channel.connected:
                add_action(channel, action)
                return action
        action(channel, False)
        return None

    def forget_action(self, channel: ChannelT, action: Action) -> None:
        with self.lock:
            actions = channel.on_connect
            if isinstance(actions, list) and action in actions:
                actions.remove(action)

    def access_of(self, channel: ChannelT) -> AccessChange:
        """The rights to report to watchers (pvAccess has no access-rights message)."""
        return FULL_ACCESS

    def watch(self, channel: ChannelT, mailbox: Mailbox) -> None:
        """Report connection and access-rights changes of ``channel`` to ``mailbox``, starting
        with the current state."""
        with self.lock:
            channel.watchers = [*channel.watchers, mailbox]
            if channel.connected:
                mailbox.post(ConnectionChange(True))
                mailbox.post(self.access_of(channel))

    def unwatch(self, channel: ChannelT, mailbox: Mailbox) -> None:
        mailbox.close()
        with self.lock:
            channel.watchers = [other for other in channel.watchers if other is not mailbox] \
                or NO_WATCHERS

    def close(self) -> None:
        """Stop: the engine's ``shutdown`` runs on the I/O thread; wait for it (5 s at most)."""
        if self.closed:
            return
        self.closed = True
        done = threading.Event()
        self.loop.call_soon(self._shutdown, done)
        done.wait(5)

    def _shutdown(self, done: threading.Event) -> None:
        raise NotImplementedError

    def allocate_ids(self, count: int) -> int:
        """The first of ``count`` consecutive ids (cids, request ids, subscription ids)."""
        with self._id_lock:
            first = self._next_id
            if first + count >= self._id_limit:
                first = 1
            self._next_id = first + count
        return first


def _check_name(name: str) -> None:
    if not name or len(name) > MAX_NAME or "\0" in name:
        raise ValueError(f"{name!r} is not a valid PV name")


def _check_names(names: list[str]) -> None:
    """:func:`_check_name` for all, in three passes in C (a fresh connect brings thousands);
    the first bad one named."""
    if names and (not min(map(len, names)) or max(map(len, names)) > MAX_NAME
                  or "\0" in "".join(names)):
        for name in names:
            _check_name(name)
