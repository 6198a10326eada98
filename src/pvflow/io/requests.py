"""Request handles both engines hand the Context, so it can take back what it stops waiting
for (transport layer; see :mod:`pvflow.io.contract`).

A request is either in flight (its ids registered on a circuit) or waiting for its channel
to connect (its action on the channel's ``on_connect`` list); withdrawing removes both, and
tells whether an answer may still be on its way.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from .channels import Action
from .completion import Completion
from .contract import BulkRequest, ReadPlan, Request


class Cancels(Protocol):
    """What a handle needs of its engine."""

    def cancel(self, channel: Any, request_id: int) -> bool: ...

    def forget_action(self, channel: Any, action: Action) -> None: ...

    def wait_answer(self, request: PendingRequest, done: Completion,
                    seconds: float | None) -> bool: ...


class PendingRequest:
    """One request on one channel, issued now or on connect."""

    __slots__ = ("engine", "channel", "actions", "ids")

    def __init__(self, engine: Cancels, channel: Any):
        self.engine = engine
        self.channel = channel
        self.actions: list[Action] = []  # on-connect actions still registered on the channel
        self.ids: list[int] = []  # request ids in flight

    def wait(self, done: Completion, seconds: float | None) -> bool:
        return self.engine.wait_answer(self, done, seconds)

    def withdraw(self) -> bool:
        engine, channel = self.engine, self.channel
        for action in self.actions:
            engine.forget_action(channel, action)
        removed = [engine.cancel(channel, request_id) for request_id in self.ids]
        return all(removed) if removed else True


class ReadsHere(Cancels, Protocol):
    """An engine whose sync reads are sent by the waiting thread, which reads the answer."""

    def read_here(self, request: ReadHere, done: Completion, seconds: float | None) -> bool: ...


class ReadHere(PendingRequest):
    """A read that a thread waits for at once (``Context.get``): sent by its wait, which
    reads the answer in that thread (the engine's ``read_here``)."""

    __slots__ = ("form", "sink", "as_string", "count")

    def __init__(self, engine: ReadsHere, channel: Any, form: Any, sink: Any,
                 as_string: bool, count: int | None) -> None:
        super().__init__(engine, channel)
        self.form = form
        self.sink = sink
        self.as_string = as_string
        self.count = count

    def wait(self, done: Completion, seconds: float | None) -> bool:
        return cast(ReadsHere, self.engine).read_here(self, done, seconds)


class Answered:
    """A request answered before it was handed back (nothing left to withdraw)."""

    __slots__ = ()

    def wait(self, done: Completion, seconds: float | None) -> bool:
        return done.wait(seconds)

    def withdraw(self) -> bool:
        return True


ANSWERED = Answered()


class BulkRequests:
    """The parts of one engine's bulk call: block reads, and single requests by slot (reads
    an engine issues one by one)."""

    __slots__ = ("parts", "singles", "plan")

    def __init__(self, parts: list[BulkRequest] | None = None) -> None:
        self.parts: list[BulkRequest] = parts if parts is not None else []
        self.singles: dict[int, Request] = {}
        self.plan: ReadPlan | None = None

    def withdraw(self, slots: list[int]) -> None:
        for part in self.parts:
            part.withdraw(slots)
        singles = self.singles
        if singles:
            for slot in slots:
                single = singles.get(slot)
                if single is not None:
                    single.withdraw()
