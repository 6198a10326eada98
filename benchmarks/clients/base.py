"""What every client adapter provides, and the two ways of driving one (plain calls, or asyncio).

An adapter maps the harness's handful of verbs onto a client's own fastest documented way of
doing them, and nothing more, so the differences between adapters are the differences between
clients. Timing loops live here, not in the operations, because an asyncio client must be timed
inside its own event loop: wrapping every call in ``run_until_complete`` would add the loop's
start-up cost to each get and make the client look slower than it is.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

MonitorCallback = Callable[[float], None]
Closer = Callable[[], None]


class ClientAdapter(ABC):
    """A client under test, driven with plain blocking calls.

    ``protocol`` is ``"ca"`` or ``"pva"``: the record names are the same, the wire is not.
    ``library`` names the distribution whose version the report prints.
    """

    protocol: str = "ca"
    library: str = ""
    normative_types: bool = True  # pvAccess: decodes an NTNDArray (the raw floor does not)
    timeout: float = 10.0

    @abstractmethod
    def open(self) -> None:
        """Create the client's context; counted in the fresh-process connect time."""

    @abstractmethod
    def connect(self, names: Sequence[str]) -> None:
        """Return once every name is connected."""

    @abstractmethod
    def get(self, name: str) -> Any:
        """One read that goes to the server (never a cached monitor value)."""

    @abstractmethod
    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        """Read all names, as concurrently as the client allows; values in the order of names."""

    @abstractmethod
    def put(self, name: str, value: float) -> None:
        """A put that returns when the server reports completion (put-callback)."""

    @abstractmethod
    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        """Call ``callback(float_value)`` for every update delivered; return a closer."""

    def close(self) -> None:
        """Release the context; the worker exits right after, so this may be a no-op."""

    def connect_and_read(self, names: Sequence[str]) -> Sequence[Any]:
        """The fresh-process measurement; clients with a one-call way of doing it override this."""
        self.connect(names)
        return self.get_many(names)

    def put_and_get(self, name: str, value: float) -> Any:
        self.put(name, value)
        return self.get(name)

    # The driving side: how the harness runs the verbs above.

    def run(self, operation: Callable[[], Any]) -> Any:
        """Run one verb call to completion."""
        return operation()

    def time_each(self, operation: Callable[[], Any], repetitions: int) -> list[float]:
        """Seconds taken by each of ``repetitions`` calls, back to back."""
        durations = []
        clock = time.perf_counter
        for _ in range(repetitions):
            started = clock()
            operation()
            durations.append(clock() - started)
        return durations

    def idle(self, seconds: float) -> None:
        """Let the client deliver monitor events for a while."""
        time.sleep(seconds)


class AsyncClientAdapter(ClientAdapter):
    """A client whose verbs are coroutines; one event loop runs for the whole worker process.

    Subclasses implement the verbs as ``async def``; the harness calls them through ``run`` and
    ``time_each``, which await them inside the loop.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

    def run(self, operation: Callable[[], Any]) -> Any:
        return self.loop.run_until_complete(operation())

    def time_each(self, operation: Callable[[], Any], repetitions: int) -> list[float]:
        async def timed() -> list[float]:
            durations = []
            clock = time.perf_counter
            for _ in range(repetitions):
                started = clock()
                await operation()
                durations.append(clock() - started)
            return durations

        return self.loop.run_until_complete(timed())

    def idle(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    async def connect_and_read(self, names: Sequence[str]) -> Sequence[Any]:  # type: ignore[override]
        await self.connect(names)  # type: ignore[misc]
        return await self.get_many(names)  # type: ignore[misc]

    async def put_and_get(self, name: str, value: float) -> Any:  # type: ignore[override]
        await self.put(name, value)  # type: ignore[misc]
        return await self.get(name)

    def open(self) -> None:
        """asyncio clients create their context lazily, inside the first call."""


def first_element(value: Any) -> float:
    """A monitor payload as one float, whatever container the client wraps it in."""
    try:
        return float(value)
    except TypeError:
        return float(value[0])
