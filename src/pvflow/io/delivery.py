"""Monitor delivery: per-subscription bounded queues drained by worker threads, in order.

The I/O thread only appends to a subscription's queue and, when the queue was idle, puts the
subscription on a ready queue. Workers drain a few items per turn and requeue the
subscription at the back (p4p's fairness), so one slow callback holds one worker and delays no
other PV; a full queue drops its oldest update, counts it and says so in the log.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pvflow.monitor")

BATCH = 16  # items one worker turn delivers before letting other subscriptions run


class ConnectionChange:
    """Queued with the values so connection and data callbacks arrive in wire order."""

    __slots__ = ("connected",)

    def __init__(self, connected: bool):
        self.connected = connected


class AccessChange:
    """The server changed (or first told) the access rights of a channel."""

    __slots__ = ("read", "write")

    def __init__(self, read: bool, write: bool):
        self.read = read
        self.write = write


class Mailbox:
    """The ordered, bounded queue of one subscription (or connection watch)."""

    def __init__(self, name: str, callback: Callable[[Any], None],
                 connection_callback: Callable[[bool], None] | None,
                 schedule: Callable[[Mailbox], None], maxlen: int,
                 access_callback: Callable[[bool, bool], None] | None = None):
        if maxlen < 1:
            raise ValueError(f"queue size must be at least 1, not {maxlen}")
        self.name = name
        self.callback = callback
        self.connection_callback = connection_callback
        self.access_callback = access_callback
        self.maxlen = maxlen
        self.dropped = 0
        self.delivered = 0
        self.failed_callbacks = 0
        self.closed = False
        self._schedule = schedule
        self._queue: deque[Any] = deque()
        self._scheduled = False
        self._lock = threading.Lock()

    def post(self, item: Any) -> None:
        """Called on the I/O thread for each update."""
        if self.closed:
            return
        items = self._queue
        if len(items) >= self.maxlen:
            items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("%s: monitor queue full (%d), %d updates dropped so far; the callback "
                            "is slower than the update rate", self.name, self.maxlen, self.dropped)
        items.append(item)
        with self._lock:
            if not self._scheduled:
                self._scheduled = True
                self._schedule(self)

    def run(self) -> None:
        """Deliver up to BATCH items; requeue at the back when more are waiting."""
        items = self._queue
        for _ in range(BATCH):
            if self.closed:
                items.clear()
                break
            try:
                item = items.popleft()
            except IndexError:
                break
            self._deliver(item)
        with self._lock:
            if items and not self.closed:
                self._schedule(self)
            else:
                self._scheduled = False

    def _deliver(self, item: Any) -> None:
        try:
            if isinstance(item, ConnectionChange):
                if self.connection_callback is not None:
                    self.connection_callback(item.connected)
                return
            if isinstance(item, AccessChange):
                if self.access_callback is not None:
                    self.access_callback(item.read, item.write)
                return
            self.delivered += 1
            self.callback(item)
        except Exception:
            self.failed_callbacks += 1
            log.exception("%s: monitor callback %r failed", self.name, self.callback)

    def close(self) -> None:
        self.closed = True


class Dispatcher:
    """Worker threads running ready mailboxes; shared by all subscriptions of a process.

    The workers start when the first callback is registered (``start``, from the caller's
    thread: a thread start waits for the new thread to run, which must not hold up the I/O
    thread in the middle of a burst of replies), so a process that only gets and puts never
    pays for them.
    """

    def __init__(self, workers: int = 4, name: str = "pvflow-callback"):
        if workers < 1:
            raise ValueError(f"need at least one callback worker, not {workers}")
        self._ready: queue.SimpleQueue[Mailbox | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
                         for index in range(workers)]
        self._started = False
        self._start_lock = threading.Lock()

    def schedule(self, mailbox: Mailbox) -> None:
        if not self._started:
            self.start()
        self._ready.put(mailbox)

    def start(self) -> None:
        """Start the workers. The caller waits for the first only, which starts the others:
        each start waits for its thread to run, a GIL hand-over the caller (making its first
        PV) need not sit through four times."""
        if self._started:
            return
        with self._start_lock:
            if not self._started:
                self._threads[0].start()
                self._started = True

    def _work(self) -> None:
        if threading.current_thread() is self._threads[0]:
            for thread in self._threads[1:]:
                thread.start()
        ready = self._ready
        while True:
            mailbox = ready.get()
            if mailbox is None:
                return
            mailbox.run()

    def stop(self) -> None:
        if not self._started:
            return
        for _ in self._threads:
            self._ready.put(None)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(5)


def asyncio_schedule(loop: Any) -> Callable[[Mailbox], None]:
    """Deliver a mailbox on an asyncio loop's thread instead of the worker threads."""
    return lambda mailbox: loop.call_soon_threadsafe(mailbox.run)


class _Call:
    """A one-off callback (a put completion) run by the workers like a mailbox turn."""

    __slots__ = ("function", "args")

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...]):
        self.function = function
        self.args = args

    def run(self) -> None:
        try:
            self.function(*self.args)
        except Exception:
            log.exception("callback %r failed", self.function)


def call_in_worker(dispatcher: Dispatcher, function: Callable[..., Any], *args: Any) -> None:
    """Run ``function(*args)`` on a callback worker, never on the I/O thread."""
    dispatcher.schedule(_Call(function, args))  # type: ignore[arg-type]


_shared: Dispatcher | None = None
_shared_lock = threading.Lock()
_shared_pid: int | None = None


def shared_dispatcher() -> Dispatcher:
    """The process's callback workers (new ones in a forked child: threads do not survive
    a fork, and the parent's would look started)."""
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid():
            _shared = Dispatcher()
            _shared_pid = os.getpid()
        return _shared
