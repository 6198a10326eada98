"""The external controller of a busy-record fly scan, as softioc records (application layer).

softioc has no synApps busy record, so busy semantics are built from two real records:

- ``$(P)mybusy``: a ``bo`` record (ZNAM "Done", ONAM "Busy"). Putting "Busy" processes it,
  which posts "Busy" to monitors at once and forward-links (``.FLNK``) to ``$(P)fly:run``.
- ``$(P)fly:run``: a ``longout`` record with *blocking* Python device support. Processing it
  runs the scan and holds the record active (PACT) until the scan has finished and
  ``$(P)mybusy`` is back to "Done".

EPICS put-callback (CA WRITE_NOTIFY, PVA put with completion) waits for every record that a put
processes through its links, including an asynchronous one reached by ``FLNK``. So a
put-callback of "Busy" to ``$(P)mybusy`` completes only after the scan, exactly as with a
synApps busy record, while "Busy" and "Done" still reach monitors when they happen. A put of
"Done" during a scan aborts it: the arrays keep the points taken so far.

The waveforms ``$(P)t_array``, ``$(P)x_array``, ``$(P)y_array`` (DOUBLE, NELM configurable) are
emptied when a scan starts and grow by one point per trigger, so ``.NORD`` counts the points
taken; ``$(P)str_wave`` (CHAR 256) describes the last scan in words.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import numpy as np

from ..framework.structured_logging import log_event
from .sim import ScanSettings, SignalShape, position, signal

BUSY_DONE = 0
BUSY_BUSY = 1
MESSAGE_LENGTH = 256

logger = logging.getLogger("pvflow.ioc.flyscan")


class FlyScanController:
    """Owns the records of one fly-scan controller IOC and runs its scans on softioc's loop.

    Construct, then call :meth:`create_records` before ``iocInit``. All callbacks run on the
    asyncio loop of softioc's dispatcher, so no state here needs a lock.
    """

    def __init__(self, prefix: str, array_length: int = 256, seed: int | None = None):
        if not prefix:
            raise ValueError("prefix must not be empty")
        if not isinstance(array_length, int) or not 1 <= array_length <= 1_000_000:
            raise ValueError(f"array_length must be an int in 1..1000000, got {array_length!r}")
        self.prefix = prefix
        self.array_length = array_length
        self.scans_completed = 0
        self._rng = np.random.default_rng(seed)
        self._abort = asyncio.Event()
        self._scanning = False
        self._records: dict[str, Any] = {}

    # ----------------------------------------------------------------- records
    def create_records(self, asg: str = "DEFAULT") -> None:
        """Create the records with softioc's builder (imported here: it loads EPICS base),
        in access security group ``asg``."""
        from softioc import builder

        p = self.prefix
        defaults = ScanSettings(points=min(100, self.array_length))
        records = self._records
        records["run"] = builder.longOut(
            p + "fly:run", initial_value=0, blocking=True, always_update=True,
            on_update=self._on_run, DESC="runs a scan while mybusy is Busy")
        records["busy"] = builder.boolOut(
            p + "mybusy", ZNAM="Done", ONAM="Busy", initial_value=BUSY_DONE,
            on_update=self._on_busy, FLNK=records["run"], DESC="fly scan busy")
        for name, description in (("t_array", "timestamps"), ("x_array", "positions"),
                                  ("y_array", "signals")):
            records[name] = builder.WaveformIn(
                p + name, length=self.array_length, datatype=np.float64, DESC=description,
                initial_value=np.zeros(0))
        records["str_wave"] = builder.longStringIn(
            p + "str_wave", length=MESSAGE_LENGTH, initial_value="idle")

        def setting(name: str, value: float, units: str, description: str) -> None:
            records[name] = builder.aOut(
                p + "fly:" + name, initial_value=value, EGU=units, PREC=4, DESC=description,
                validate=self._validator(name))

        records["points"] = builder.longOut(
            p + "fly:points", initial_value=defaults.points, DESC="number of points",
            validate=self._validator("points"))
        setting("start", defaults.start, "mm", "motor start position")
        setting("end", defaults.end, "mm", "motor end position")
        setting("period", defaults.period, "s", "time between points")
        records["shape"] = builder.mbbOut(
            p + "fly:shape", *(shape.value for shape in SignalShape),
            initial_value=list(SignalShape).index(defaults.shape), DESC="signal shape")
        setting("center", defaults.center, "mm", "signal center")
        setting("width", defaults.width, "mm", "signal width")
        setting("amplitude", defaults.amplitude, "", "signal amplitude")
        setting("background", defaults.background, "", "signal background")
        setting("noise", defaults.noise, "", "signal noise (std dev)")
        records["position"] = builder.aIn(
            p + "fly:position", initial_value=defaults.start, EGU="mm", PREC=4,
            DESC="simulated motor position")
        records["speed"] = builder.aIn(
            p + "fly:speed", initial_value=defaults.speed, EGU="mm/s", PREC=4,
            DESC="motor speed of the next scan")
        records["scans"] = builder.longIn(
            p + "fly:scans", initial_value=0, DESC="scans completed")
        for record in records.values():
            record.ASG = asg

    def _validator(self, name: str) -> Any:
        """A softioc ``validate`` callback: rejects a value the scan cannot use, and says why."""

        def validate(record: Any, value: Any) -> bool:
            try:
                self._settings(**{name: value})
            except ValueError as error:
                log_event(logger, logging.ERROR, "rejected setting",
                          pv=self.prefix + "fly:" + name, value=value, reason=str(error))
                return False
            return True

        return validate

    def _settings(self, **override: Any) -> ScanSettings:
        """The scan settings from the setting records, with ``override`` applied."""
        records = self._records
        values: dict[str, Any] = {
            name: records[name].get() for name in (
                "points", "start", "end", "period", "center", "width", "amplitude",
                "background", "noise")}
        values["shape"] = list(SignalShape)[int(records["shape"].get())]
        values.update(override)
        values["points"] = int(values["points"])
        if values["points"] > self.array_length:
            raise ValueError(
                f"points must not exceed the arrays' NELM ({self.array_length}), "
                f"got {values['points']}")
        settings = ScanSettings(**values)
        if "points" in override or "period" in override or "start" in override \
                or "end" in override:
            self._records["speed"].set(settings.speed)
        return settings

    # --------------------------------------------------------------- callbacks
    async def _on_busy(self, value: int) -> None:
        """``$(P)mybusy`` changed: "Done" during a scan aborts it."""
        if int(value) == BUSY_DONE and self._scanning:
            log_event(logger, logging.INFO, "abort requested", pv=self.prefix + "mybusy")
            self._abort.set()

    async def _on_run(self, _value: int) -> None:
        """``$(P)fly:run`` processed (by mybusy's FLNK): scan while mybusy is Busy.

        Returning completes the record, which completes the put-callback of "Busy"; so this
        returns only once mybusy is "Done" again.
        """
        busy = self._records["busy"]
        while int(busy.get()) == BUSY_BUSY and not self._scanning:
            self._abort.clear()
            self._scanning = True
            try:
                finished = await self._scan()
            except Exception as error:  # a broken scan must still release the busy record
                logger.exception("scan failed: %s", error)
                self._message(f"scan failed: {error}")
                finished = True
            finally:
                self._scanning = False
            if finished and int(busy.get()) == BUSY_BUSY:
                busy.set(BUSY_DONE)
            # after an abort, a new "Busy" may have arrived meanwhile: the loop runs it

    # -------------------------------------------------------------------- scan
    async def _scan(self) -> bool:
        """Run one scan in real time; True if it ran to the end, False if aborted."""
        settings = self._settings()
        records = self._records
        times = np.zeros(settings.points)
        xs = np.zeros(settings.points)
        ys = np.zeros(settings.points)
        for name in ("t_array", "x_array", "y_array"):
            records[name].set(np.zeros(0))
        self._message(f"scanning {settings.points} points from {settings.start:g} to "
                      f"{settings.end:g}, {settings.shape.value} signal")
        log_event(logger, logging.INFO, "scan started", points=settings.points,
                  start=settings.start, end=settings.end, period=settings.period,
                  shape=settings.shape.value)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for index in range(settings.points):
            if await self._aborted_before(begin + index * settings.period):
                self._message(f"aborted after {index} of {settings.points} points")
                log_event(logger, logging.INFO, "scan aborted", points_taken=index,
                          points=settings.points)
                return False
            times[index] = time.time()
            xs[index] = position(settings, index)
            ys[index] = signal(settings, xs[index], self._rng)
            records["position"].set(xs[index])
            # y and x first: a client that follows t_array's NORD finds x and y already there
            records["y_array"].set(ys[: index + 1])
            records["x_array"].set(xs[: index + 1])
            records["t_array"].set(times[: index + 1])
        self.scans_completed += 1
        records["scans"].set(self.scans_completed)
        self._message(f"done: {settings.points} points from {settings.start:g} to "
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

    def _message(self, text: str) -> None:
        """Show ``text`` in ``$(P)str_wave`` (truncated to fit its NELM)."""
        encoded = text.encode("utf-8", errors="replace")[: MESSAGE_LENGTH - 1]
        self._records["str_wave"].set(encoded.decode("utf-8", errors="ignore"))
