"""The engine contract: what the Context asks of a protocol engine (transport layer).

The Context routes a name by its scheme to an :class:`Engine` and waits; it never asks which
engine it holds. Each engine keeps its protocol's tactics behind these verbs (Channel Access
joins a CTRL and a TIME read for a control reading, pvAccess reads both in one GET), answers
through sinks called on the I/O thread, and hands back handles the Context withdraws when it
stops waiting. Adding a protocol is a new package implementing :class:`Engine` plus one entry
in the Context's table of engines.

Must not import ``pvflow.ca``, ``pvflow.pva`` or anything above the transport layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol, TypeVar

from ..errors import PVTimeoutError
from .completion import Completion
from .delivery import Dispatcher, Mailbox
from .loop import IOLoop

Sink = Callable[[Any], None]
"""Where an answer goes, on the I/O thread (or the caller's, for an error found at once):
a value, or an exception instance for a failure."""


class Form(IntEnum):
    """How much of a PV a read returns, whatever the protocol. (An IntEnum only so that
    engines may look it up on their hot paths at the cost of an int.)"""

    VALUE = 0  # the bare value
    STATUS = 1  # plus alarm status and severity
    TIME = 2  # plus the timestamp
    GRAPHIC = 3  # plus units, precision and display limits
    CONTROL = 4  # plus control limits and enum choices: everything


FORMS = {"value": Form.VALUE, "plain": Form.VALUE, "sts": Form.STATUS, "time": Form.TIME,
         "gr": Form.GRAPHIC, "ctrl": Form.CONTROL}
"""The public names of the forms (``get(form=...)``)."""


@dataclass(frozen=True)
class ChannelInfo:
    """What `pvflow info` shows: where a PV lives and what it holds."""

    name: str
    address: str | None
    native_type: str
    element_count: int
    read_access: bool
    write_access: bool
    state: str

    @classmethod
    def of(cls, name: str, address: str | None, native_type: str, element_count: int,
           read_access: bool, write_access: bool, state: str) -> ChannelInfo:
        """The same as the constructor, without the frozen ``__init__``'s seven
        ``object.__setattr__`` calls (2 µs): a pyepics PV asks on every connection."""
        info = object.__new__(cls)
        object.__setattr__(info, "__dict__", {
            "name": name, "address": address, "native_type": native_type,
            "element_count": element_count, "read_access": read_access,
            "write_access": write_access, "state": state})
        return info


class Slots(Protocol):
    """Answers collected by slot index (a :class:`~pvflow.io.completion.Batch`); filled on the
    I/O thread only."""

    def set(self, index: int, value: Any) -> None: ...


class Request(Protocol):
    """A request in flight, or waiting for its channel to connect."""

    def wait(self, done: Completion, seconds: float | None) -> bool:
        """Wait until ``done`` (this request's completion) is set; False after ``seconds``.
        An engine may read the answer off the socket in the calling thread."""
        ...

    def withdraw(self) -> bool:
        """Take it back; True when nothing of it is left in flight (so the caller may report
        a timeout), False when its answer is already being delivered."""
        ...


class ReadPlan(Protocol):
    """A bulk read an engine can repeat cheaply while its channels stay where they are."""

    @property
    def valid(self) -> bool: ...

    def send(self, batch: Slots) -> BulkRequest:
        """Issue the reads again into ``batch``; ``DisconnectedError`` when a circuit is gone."""
        ...


class BulkRequest(Protocol):
    """The reads of a bulk call on one engine, by slot of the caller's batch."""

    @property
    def plan(self) -> ReadPlan | None:
        """Set when the same reads may be repeated through a plan (the caller keeps it)."""
        ...

    def withdraw(self, slots: list[int]) -> None:
        """Take back the reads of ``slots`` still unanswered (others are ignored)."""
        ...


ChannelT = TypeVar("ChannelT")
ChannelIn = TypeVar("ChannelIn", contravariant=True)


class Engine(Protocol[ChannelT]):
    """A protocol engine as the Context uses it. Every method may be called from any thread;
    sinks run on the I/O thread."""

    def channel(self, name: str) -> ChannelT:
        """The channel of a bare name, created (and searched for) on first use."""
        ...

    def channels(self, names: Iterable[str]) -> list[ChannelT]:
        """Many channels at once: one pass, one hand-over to the I/O thread."""
        ...

    def start_read(self, channel: ChannelT, form: Form, sink: Sink, as_string: bool,
                   count: int | None, waited: bool = False) -> Request:
        """Read once: now from the caller's thread when connected, else when it connects.
        ``waited``: the calling thread waits for the answer at once, through the request's
        :meth:`~Request.wait`, which may then be what sends it (and reads the answer)."""
        ...

    def read_many(self, channels: list[ChannelT], slots: list[int], form: Form,
                  as_string: bool, batch: Slots) -> BulkRequest:
        """Read ``channels`` into ``slots`` of ``batch``: the connected ones now, the others as
        they connect, grouped per circuit."""
        ...

    def start_connect(self, channel: ChannelT, batch: Slots, slot: int) -> Request:
        """Set ``batch[slot]`` to True once ``channel`` is connected (at once if it is)."""
        ...

    def put(self, channel: ChannelT, value: Any, sink: Sink | None) -> Request:
        """Write ``value`` to a connected channel; ``sink`` (if any) gets None or the error
        once the server has processed it. A bad value raises ``ValueError`` naming the PV."""
        ...

    def subscribe(self, channel: ChannelT, form: Form, mask: int, mailbox: Mailbox,
                  server_queue_size: int, request_text: str | None,
                  as_string: bool, dtype: str | None = None) -> object:
        """Start a monitor posting to ``mailbox``; it survives reconnections. The returned
        handle goes back to :meth:`unsubscribe`. ``dtype``: the element type the caller
        knows the field holds, for a protocol whose types cannot say it."""
        ...

    def unsubscribe(self, subscription: Any) -> None: ...

    def watch(self, channel: ChannelT, mailbox: Mailbox) -> None:
        """Post connection and access-rights changes to ``mailbox``, current state first."""
        ...

    def unwatch(self, channel: ChannelT, mailbox: Mailbox) -> None: ...

    def info(self, channel: ChannelT, sink: Sink) -> Request:
        """``sink`` gets a :class:`ChannelInfo` of a connected channel (named by its bare name)."""
        ...

    def timeout_error(self, channel: ChannelT, what: str, timeout: float | None
                      ) -> PVTimeoutError:
        """The error for a request on ``channel`` that got no answer: it names the PV and
        says why (not found, not connected, or the server silent)."""
        ...

    def release(self, channels: Iterable[ChannelT]) -> None:
        """Forget ``channels``: their monitors and watches end and the servers free them."""
        ...

    @property
    def remote_calls(self) -> RemoteCalls[ChannelT] | None:
        """The engine's RPC and introspection, when its protocol has them."""
        ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, int]: ...


class RemoteCalls(Protocol[ChannelIn]):
    """An engine's optional capability: calls on a channel beyond read, write and monitor."""

    def rpc(self, channel: ChannelIn, argument: Any, sink: Sink) -> Request:
        """Send ``argument`` to the channel's server; ``sink`` gets its answer."""
        ...

    def introspect(self, channel: ChannelIn, sink: Sink) -> Request:
        """``sink`` gets the channel's type description."""
        ...


class EngineFactory(Protocol):
    """Makes the engine of one scheme for a Context (``env`` replaces ``os.environ``)."""

    def __call__(self, env: Mapping[str, str] | None, loop: IOLoop,
                 dispatcher: Dispatcher) -> Engine[Any]: ...
