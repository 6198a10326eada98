"""The I/O thread: one per process, owning every socket of every Context (transport layer).

An epoll loop rather than asyncio (or the ``selectors`` module, which builds a key object per
event): the hot path is recv_into, a struct parse and a lock release, with no transport or
protocol objects per message, and sync callers (the common case in ophyd) wait on a lock
rather than on a future of another thread's event loop. Systems without epoll (macOS,
Windows) wait through ``selectors`` instead (see :mod:`pvflow.io.pollers`).
Other threads never touch the selector; they hand work over with :meth:`IOLoop.call_soon`
(a deque plus one wake-up byte) or write request frames straight to a circuit's socket.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .pollers import READ, WRITE, make_poller

log = logging.getLogger("pvflow.io")

Handler = Callable[[int], None]
__all__ = ["READ", "WRITE", "IOLoop", "Timer", "shared_loop"]


class Timer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class IOLoop:
    """A selector loop on a daemon thread; handlers, timers and calls all run on it."""

    def __init__(self, name: str = "pvflow-io"):
        self._poller = make_poller()
        # Whether other threads may change what a socket is watched for (set_events): epoll's
        # ``modify`` is thread-safe, a ``selectors`` selector is not.
        epoll = getattr(select, "epoll", None)
        self.shares_events = epoll is not None and isinstance(self._poller, epoll)
        self._handlers: dict[int, Handler] = {}
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._wake_pending = False
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._end_of_iteration: dict[Any, Callable[[], None]] = {}
        self._running = True
        self.register(self._wake_read, READ, self._drain_wake)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.thread_id = self._thread.ident

    # --- called from any thread ---------------------------------------------------------------
    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        self._calls.append((callback, args))
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._wake_write.send(b"\0")
            except (BlockingIOError, OSError):
                pass

    def in_loop(self) -> bool:
        return threading.get_ident() == self.thread_id

    def set_events(self, sock: socket.socket, events: int) -> None:
        """Watch ``sock`` for ``events`` (with the handler it has); from another thread
        only when :attr:`shares_events`."""
        self._poller.modify(sock.fileno(), events)

    def stop(self, timeout: float = 5.0) -> None:
        if not self._running:
            return
        self.call_soon(self._halt)
        if not self.in_loop():
            self._thread.join(timeout)

    # --- called on the loop thread only ----------------------------------------------------------
    def register(self, sock: socket.socket, events: int, handler: Handler) -> None:
        """Call ``handler(events)`` when ``sock`` is ready (``READ``/``WRITE`` masks)."""
        self._handlers[sock.fileno()] = handler
        self._poller.register(sock.fileno(), events)

    def modify(self, sock: socket.socket, events: int, handler: Handler) -> None:
        self._handlers[sock.fileno()] = handler
        self._poller.modify(sock.fileno(), events)

    def unregister(self, sock: socket.socket) -> None:
        fileno = sock.fileno()
        if self._handlers.pop(fileno, None) is not None:
            try:
                self._poller.unregister(fileno)
            except (OSError, ValueError):
                pass

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        return timer

    def at_end_of_iteration(self, key: Any, callback: Callable[[], None]) -> None:
        """Run ``callback`` once after the current batch of events (coalesces circuit flushes)."""
        self._end_of_iteration[key] = callback

    # --- the loop ----------------------------------------------------------------------------------
    def _halt(self) -> None:
        self._running = False

    def _drain_wake(self, mask: int) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _timeout(self) -> float:
        if self._calls or self._end_of_iteration:
            return 0.0
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if not self._timers:
            return -1.0
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _run(self) -> None:
        poll = self._poller.poll
        handlers = self._handlers
        calls = self._calls
        while self._running:
            for fileno, events in poll(self._timeout()):
                handler = handlers.get(fileno)
                if handler is not None:
                    self._guarded(handler, events)
            if self._timers:
                self._run_timers()
            self._wake_pending = False
            while calls:
                callback, args = calls.popleft()
                self._guarded(callback, *args)
            while self._end_of_iteration:
                pending, self._end_of_iteration = self._end_of_iteration, {}
                for callback in pending.values():
                    self._guarded(callback)
        self._close()

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                self._guarded(timer.callback)

    @staticmethod
    def _guarded(callback: Callable[..., Any], *args: Any) -> None:
        # Handlers close their own circuit on bad input; this is the last line that keeps the
        # one I/O thread of the process alive whatever a handler does.
        try:
            callback(*args)
        except Exception:
            log.exception("error in I/O handler %r", callback)

    def _close(self) -> None:
        self._handlers.clear()
        self._poller.close()
        self._wake_read.close()
        self._wake_write.close()


_shared: IOLoop | None = None
_shared_lock = threading.Lock()
_shared_pid: int | None = None


def shared_loop() -> IOLoop:
    """The process's I/O thread, started on first use (and again in a forked child)."""
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid() or not _shared._running:
            _shared = IOLoop()
            _shared_pid = os.getpid()
        return _shared
