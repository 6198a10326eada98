"""One fly scan driven through a synApps-style busy record (integration layer, on Context).

The protocol: put "Busy" with a put-callback. The controller sets the record Busy at once
(monitors see it: acquisition has started) and the put-callback completes when the record is
Done again (acquisition has finished), however long that takes, so the put carries no
timeout. Both moments are pushed to us (a monitor and the put-callback); nothing polls.

Both flyers (ophyd v1 and ophyd-async) hold a :class:`BusyScans`, which refuses a kickoff
while a scan runs and starts each :class:`BusyFlight` with its two deadlines; the flyers only
differ in how they read the record and wait for the flight's two futures.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np

from ..context import Context, Subscription
from .controller import FlyController, same_value
from .errors import FlyScanError, FlyScanTimeoutError
from .fly_data import FlyArrays, trim

DONE = 0
BUSY = 1


class BusyFlight:
    """The state of one scan: ``started`` resolves when the record turns Busy, ``finished``
    when the put-callback completes; either fails with a :class:`FlyScanError`.
    ``released`` resolves when the put-callback has come (or no put was made): only then has
    the controller let go of the scan, even one that a timeout already failed."""

    def __init__(self, context: Context, pv: str, owner: str):
        self.context = context
        self.pv = pv
        self.owner = owner
        self.started: Future[None] = Future()
        self.finished: Future[None] = Future()
        self.released: Future[None] = Future()
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
            self._resolve(self.released, None)
            raise failure from error

    def begin_after(self, previous: BusyFlight) -> None:
        """:meth:`begin` once ``previous`` is released. A timeout aborts its scan, but the
        controller may still be ending it: a Busy put meanwhile would have its put-callback
        completed at once (EPICS does not wait for a record that is still active), and this
        scan would look finished before it ran."""
        def begin(_: object) -> None:
            if self.started.done():  # failed meanwhile by the kickoff timeout: no put made
                self._resolve(self.released, None)
                return
            with contextlib.suppress(FlyScanError):  # begin failed started with it
                self.begin()

        previous.released.add_done_callback(begin)

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
        self._resolve(self.released, None)
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


class BusyScans:
    """A flyer's scans on one controller: kickoff, complete and stop, whatever the flyer
    awaits with."""

    def __init__(self, context: Context, controller: FlyController,
                 owner: Callable[[], str]) -> None:
        self.context = context
        self.controller = controller
        self._owner = owner  # the flyer's name, read when needed: ophyd-async names late
        self._flight: BusyFlight | None = None
        self._complete_deadline: float | None = None

    @property
    def owner(self) -> str:
        return self._owner()

    def check_idle(self, busy_value: Any) -> None:
        """Refuse a kickoff while our scan flies or the record (read as ``busy_value``)
        shows another one."""
        busy = self.controller.busy_pv
        if self._flight is not None and self._flight.flying:
            raise FlyScanError(f"{self.owner}: kickoff refused: the fly scan on {busy} is "
                               "still running; wait for complete() or stop() it", pv=busy)
        if int(busy_value) != DONE:
            raise FlyScanError(f"{self.owner}: kickoff refused: {busy} is already Busy "
                               "(another scan runs on this controller)", pv=busy)

    def kickoff(self, kickoff_timeout: float, complete_timeout: float | None,
                settings: Mapping[str, Any]) -> Future[None]:
        """Put Busy (once the controller has let go of our previous scan, if a timeout
        aborted it); the future resolves once the record shows Busy (fails after
        ``kickoff_timeout``, the scan aborted). ``complete_timeout`` None: twice points x
        period plus a margin, from the setting values in ``settings``."""
        busy = self.controller.busy_pv
        if complete_timeout is None:
            complete_timeout = self.controller.complete_timeout(settings)
        self._complete_deadline = complete_timeout
        owner = self.owner
        previous, flight = self._flight, BusyFlight(self.context, busy, owner)
        self._flight = flight
        if previous is not None and not previous.released.done():
            flight.begin_after(previous)
        else:
            flight.begin()
        flight.expect(flight.started, kickoff_timeout, lambda: (
            f"{owner}: {busy} did not turn Busy within {kickoff_timeout:g} s of the kickoff; the "
            "scan was aborted"))
        return flight.started

    def complete(self) -> Future[None]:
        """Resolves when the record is Done again; fails after the complete deadline."""
        flight = self._flight
        if flight is None:
            raise FlyScanError(f"{self.owner}: complete() without kickoff()")
        busy, seconds = self.controller.busy_pv, self._complete_deadline
        flight.expect(flight.finished, seconds, lambda: (
            f"{self.owner}: {busy} was still Busy {seconds:g} s after complete(); the scan "
            f"was aborted (Done put to {busy})"))
        return flight.finished

    def stop(self) -> None:
        """Abort a running scan (the arrays keep the points taken so far)."""
        if self._flight is not None and self._flight.flying:
            self._flight.abort()

    def check_written(self, wanted: Mapping[str, Any], read_back: Mapping[str, Any]) -> None:
        """ValueError naming every setting whose read-back is not the value written."""
        pvs = self.controller.setting_pvs
        refused = [f"{pvs[name]}={value!r}" for name, value in wanted.items()
                   if not same_value(read_back[name], value)]
        if refused:
            raise ValueError(f"{self.owner}: the controller refused {', '.join(refused)} "
                             "(see its log for the reason)")


def raise_failed(owner: str, results: Mapping[str, Any]) -> None:
    """Raise the first failure of a ``get_many`` as a FlyScanError naming its PV."""
    for pv, result in results.items():
        if isinstance(result, BaseException):
            raise FlyScanError(f"{owner}: cannot read {pv}: {result}", pv=pv) from result


def fly_columns(owner: str, arrays: FlyArrays, values: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
    """The columns of one scan from a ``get_many`` of its arrays, trimmed to the points
    taken; FlyScanError naming what is wrong."""
    raise_failed(owner, values)
    try:
        return trim(arrays, values)
    except ValueError as error:
        raise FlyScanError(f"{owner}: {error}") from None
