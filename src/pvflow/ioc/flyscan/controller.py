"""The external controller of a busy-record fly scan (application layer).

The busy record is the whole state: putting "Busy" to ``$(P)mybusy`` runs one scan in real
time (:mod:`.records` explains how the put-callback waits for it); a put of "Done" during a
scan aborts it, the arrays keep the points taken so far.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import numpy as np

from ..framework.structured_logging import log_event
from .records import BUSY_DONE, FlyScanRecords
from .sim import position, signal

logger = logging.getLogger("pvflow.ioc.flyscan")


class FlyScanController:
    """Runs the scans of one fly-scan controller IOC on softioc's loop.

    Construct, then call :meth:`build_records` before ``iocInit``. All callbacks run on the
    asyncio loop of softioc's dispatcher, so no state here needs a lock.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.scans_completed = 0
        self.records: FlyScanRecords | None = None
        self._rng = np.random.default_rng(seed)
        self._abort = asyncio.Event()
        self._scanning = False

    def build_records(self, prefix: str, array_length: int,
                      asg: str = "DEFAULT") -> FlyScanRecords:
        """Create the records, wired to this controller, in access security group ``asg``."""
        self.records = FlyScanRecords(prefix, array_length, self._on_busy, self._on_run, asg)
        return self.records

    # --------------------------------------------------------------- callbacks
    async def _on_busy(self, value: int) -> None:
        """``$(P)mybusy`` changed: "Done" during a scan aborts it."""
        if int(value) == BUSY_DONE and self._scanning:
            assert self.records is not None
            log_event(logger, logging.INFO, "abort requested", pv=self.records.prefix + "mybusy")
            self._abort.set()

    async def _on_run(self, _value: int) -> None:
        """``$(P)fly:run`` processed (for a Busy put to mybusy): scan while mybusy is Busy.

        Returning completes the record, which completes the put-callback of "Busy"; so this
        returns only once mybusy is "Done" again.
        """
        records = self.records
        assert records is not None
        while records.busy and not self._scanning:
            self._abort.clear()
            self._scanning = True
            try:
                finished = await self._scan(records)
            except Exception as error:  # a broken scan must still release the busy record
                logger.exception("scan failed: %s", error)
                records.message(f"scan failed: {error}")
                finished = True
            finally:
                self._scanning = False
            if finished and records.busy:
                records.done()
            # after an abort, a new "Busy" may have arrived meanwhile: the loop runs it

    # -------------------------------------------------------------------- scan
    async def _scan(self, records: FlyScanRecords) -> bool:
        """Run one scan in real time; True if it ran to the end, False if aborted."""
        settings = records.settings()
        times = np.zeros(settings.points)
        xs = np.zeros(settings.points)
        ys = np.zeros(settings.points)
        records.clear_arrays()
        records.message(f"scanning {settings.points} points from {settings.start:g} to "
                        f"{settings.end:g}, {settings.shape.value} signal")
        log_event(logger, logging.INFO, "scan started", points=settings.points,
                  start=settings.start, end=settings.end, period=settings.period,
                  shape=settings.shape.value)
        begin = asyncio.get_running_loop().time()
        for index in range(settings.points):
            if await self._aborted_before(begin + index * settings.period):
                records.message(f"aborted after {index} of {settings.points} points")
                log_event(logger, logging.INFO, "scan aborted", points_taken=index,
                          points=settings.points)
                return False
            times[index] = time.time()
            xs[index] = position(settings, index)
            ys[index] = signal(settings, xs[index], self._rng)
            records.publish_point(times, xs, ys, index + 1)
        self.scans_completed += 1
        records.scans_completed(self.scans_completed)
        records.message(f"done: {settings.points} points from {settings.start:g} to "
                        f"{settings.end:g} in {times[-1] - times[0]:.3f} s")
        log_event(logger, logging.INFO, "scan finished", points=settings.points,
                  scans_completed=self.scans_completed)
        return True

    async def _aborted_before(self, deadline: float) -> bool:
        """Wait until ``deadline`` (loop time); True as soon as an abort is requested."""
        delay = deadline - asyncio.get_running_loop().time()
        if self._abort.is_set():
            return True
        if delay <= 0 or math.isclose(delay, 0.0):
            return False
        try:
            await asyncio.wait_for(self._abort.wait(), delay)
        except TimeoutError:
            return False
        return True
