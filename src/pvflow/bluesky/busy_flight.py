"""One fly scan driven through a synApps-style busy record (integration layer, on Context).

The protocol: put "Busy" with a put-callback. The controller sets the record Busy at once
(monitors see it: acquisition has started) and the put-callback completes when the record is
Done again (acquisition has finished), however long that takes, so the put carries no
timeout. Both moments are pushed to us (a monitor and the put-callback); nothing polls.

Both flyers (ophyd v1 and ophyd-async) drive a :class:`BusyFlight` and only differ in how
they wait for its two futures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..context import Context, Subscription
from .errors import FlyScanError, FlyScanTimeoutError

DONE = 0
BUSY = 1


class BusyFlight:
    """The state of one scan: ``started`` resolves when the record turns Busy, ``finished``
    when the put-callback completes; either fails with a :class:`FlyScanError`."""

    def __init__(self, context: Context, pv: str, owner: str):
        self.context = context
        self.pv = pv
        self.owner = owner
        self.started: Future[None] = Future()
        self.finished: Future[None] = Future()
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None
        self._timers: list[threading.Timer] = []

    @property
    def flying(self) -> bool:
        return not self.finished.done()

    def begin(self) -> None:
        """Watch the record, then put Busy; returns at once."""
        self._subscription = self.context.subscribe(self.pv, self._on_update, form="value")
        try:
            self.context.put(self.pv, BUSY, callback=self._on_put_done)
        except Exception as error:
            failure = FlyScanError(f"{self.owner}: cannot put Busy to {self.pv}: {error}",
                                   pv=self.pv)
            self._fail(failure)
            raise failure from error

    def expect(self, future: Future[None], seconds: float | None,
               message: Callable[[], str]) -> None:
        """Fail ``future`` with a timeout error saying ``message()`` unless it resolves within
        ``seconds``; the scan is then aborted (the controller keeps nothing running)."""
        if seconds is None or future.done():
            return
        timer = threading.Timer(seconds, self._expire, args=(future, message))
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def abort(self) -> None:
        """Put Done without waiting: the controller stops and completes the Busy put-callback."""
        self.context.put(self.pv, DONE, wait=False)

    # --- callbacks, on pvflow's worker threads ---------------------------------------------
    def _on_update(self, value: Any) -> None:
        if int(value) == BUSY:
            self._resolve(self.started, None)

    def _on_put_done(self, error: BaseException | None) -> None:
        if error is None:
            self._resolve(self.started, None)
            self._resolve(self.finished, None)
        else:
            self._fail(FlyScanError(f"{self.owner}: the fly scan on {self.pv} failed: the "
                                    f"put-callback of Busy reported {error}", pv=self.pv))
        self._end()

    def _expire(self, future: Future[None], message: Callable[[], str]) -> None:
        if future.done():
            return
        error = FlyScanTimeoutError(message(), pv=self.pv)
        self._resolve(future, error)
        if future is self.started:
            self._resolve(self.finished, error)
        try:
            self.abort()
        finally:
            self._end()

    def _fail(self, error: FlyScanError) -> None:
        self._resolve(self.started, error)
        self._resolve(self.finished, error)
        self._end()

    def _resolve(self, future: Future[None], error: BaseException | None) -> None:
        with self._lock:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def _end(self) -> None:
        with self._lock:
            subscription, self._subscription = self._subscription, None
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        if subscription is not None:
            subscription.close()
