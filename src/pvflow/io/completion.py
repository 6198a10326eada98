"""Completions: how a request answered on the I/O thread reaches the thread or loop that waits.

Not ``concurrent.futures.Future``: a get's round trip is ~50 µs and Future's Condition-based
wait plus callback bookkeeping costs several µs of it. A pre-acquired lock released by the I/O
thread is the cheapest wake-up CPython has. Waiting threads stay interruptible by Ctrl-C
because they wait with a timeout.
"""

from __future__ import annotations

import asyncio
from _thread import allocate_lock
from collections.abc import Callable
from typing import Any

_NOT_SET = object()


class Completion:
    """One answer (value or exception), set exactly once, by the I/O thread."""

    __slots__ = ("_lock", "value", "error", "_on_done")

    def __init__(self, on_done: Callable[[Completion], None] | None = None):
        self._lock = allocate_lock()
        self._lock.acquire()
        self.value: Any = _NOT_SET
        self.error: BaseException | None = None
        self._on_done = on_done

    def set(self, value: Any) -> None:
        """The single sink requests call: an exception instance means failure."""
        if isinstance(value, BaseException):
            self.set_error(value)
        else:
            self.set_result(value)

    def set_result(self, value: Any) -> None:
        self.value = value
        self._lock.release()
        if self._on_done is not None:
            self._on_done(self)

    def set_error(self, error: BaseException) -> None:
        self.error = error
        self._lock.release()
        if self._on_done is not None:
            self._on_done(self)

    @property
    def done(self) -> bool:
        return self.value is not _NOT_SET or self.error is not None

    def wait(self, timeout: float | None) -> bool:
        """True once set; False when ``timeout`` (seconds, None = forever) passed first."""
        if timeout is None:
            while not self._lock.acquire(timeout=1.0):
                pass
            return True
        return self._lock.acquire(timeout=max(timeout, 0.0))

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class Batch:
    """Many answers collected into slots; one wake-up when the last arrives.

    Slots are filled only on the I/O thread, so the countdown needs no lock.
    """

    __slots__ = ("_lock", "results", "remaining", "_on_done")

    def __init__(self, size: int, on_done: Callable[[Batch], None] | None = None):
        self._lock = allocate_lock()
        self.results: list[Any] = [_NOT_SET] * size
        self.remaining = size
        self._on_done = on_done
        self._lock.acquire()
        if size == 0:
            self._finish()

    def set(self, index: int, value: Any) -> None:
        if self.results[index] is not _NOT_SET:
            return
        self.results[index] = value
        self.remaining -= 1
        if self.remaining == 0:
            self._finish()

    def setter(self, index: int) -> Callable[[Any], None]:
        return lambda value: self.set(index, value)

    def _finish(self) -> None:
        self._lock.release()
        if self._on_done is not None:
            self._on_done(self)

    def wait(self, timeout: float | None) -> bool:
        if timeout is None:
            while not self._lock.acquire(timeout=1.0):
                pass
            return True
        return self._lock.acquire(timeout=max(timeout, 0.0))

    def is_set(self, index: int) -> bool:
        return self.results[index] is not _NOT_SET


def asyncio_waiter(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
                   ) -> Callable[[Any], None]:
    """An ``on_done`` that resolves ``future`` on its own loop's thread."""

    def resolve(done: Any) -> None:
        try:
            loop.call_soon_threadsafe(_resolve, future, done)
        except RuntimeError:  # the loop has closed: its caller was cancelled, nobody waits
            pass

    return resolve


def _resolve(future: asyncio.Future[Any], done: Any) -> None:
    if future.done():
        return
    error = getattr(done, "error", None)
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(done)
