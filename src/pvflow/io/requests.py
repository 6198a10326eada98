"""Request handles both engines hand the Context, so it can take back what it stops waiting
for (transport layer; see :mod:`pvflow.io.contract`).

A request is either in flight (its ids registered on a circuit) or waiting for its channel
to connect (its action on the channel's ``on_connect`` list); withdrawing removes both, and
tells whether an answer may still be on its way.
"""

from __future__ import annotations

from typing import Any, Protocol

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
