"""The records of the fly-scan controller IOC (application layer).

softioc has no synApps busy record, so busy semantics are built from real records:

- ``$(P)mybusy``: a ``bo`` record (ZNAM "Done", ONAM "Busy"). Putting "Busy" processes it,
  which posts "Busy" to monitors at once and forward-links (``.FLNK``) to ``$(P)fly:on_busy``,
  a ``calcout`` that processes ``$(P)fly:run`` for "Busy" only.
- ``$(P)fly:run``: a ``longout`` record with *blocking* Python device support. Processing it
  runs the scan and holds the record active (PACT) until the scan has finished and
  ``$(P)mybusy`` is back to "Done".

EPICS put-callback (CA WRITE_NOTIFY, PVA put with completion) waits for every record that a put
processes through its links, including an asynchronous one reached through them. So a
put-callback of "Busy" to ``$(P)mybusy`` completes only after the scan, exactly as with a
synApps busy record, while "Busy" and "Done" still reach monitors when they happen.

The waveforms ``$(P)t_array``, ``$(P)x_array``, ``$(P)y_array`` (DOUBLE, NELM configurable) are
emptied when a scan starts and grow by one point per trigger, so ``.NORD`` counts the points
taken; ``$(P)str_wave`` (CHAR 256) describes the last scan in words. The ``fly:*`` settings
records hold the next scan's :class:`~.sim.ScanSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from ..framework.structured_logging import log_event
from .sim import ScanSettings, SignalShape

BUSY_DONE = 0
BUSY_BUSY = 1
MESSAGE_LENGTH = 256
SETTING_NAMES = ("points", "start", "end", "period", "center", "width", "amplitude",
                 "background", "noise")

logger = logging.getLogger("pvflow.ioc.flyscan")

BusyHandler = Callable[[int], Awaitable[None]]


class FlyScanRecords:
    """The records of one fly-scan controller IOC; built before ``iocInit``.

    ``on_busy`` runs when ``$(P)mybusy`` changes, ``on_run`` when ``$(P)fly:run`` is processed
    (for each Busy) and holds the put-callback until it returns.
    """

    def __init__(self, prefix: str, array_length: int, on_busy: BusyHandler,
                 on_run: BusyHandler, asg: str = "DEFAULT") -> None:
        if not prefix:
            raise ValueError("prefix must not be empty")
        if not isinstance(array_length, int) or not 1 <= array_length <= 1_000_000:
            raise ValueError(f"array_length must be an int in 1..1000000, got {array_length!r}")
        self.prefix = prefix
        self.array_length = array_length
        self._records: dict[str, Any] = {}
        self._create(on_busy, on_run, asg)

    def _create(self, on_busy: BusyHandler, on_run: BusyHandler, asg: str) -> None:
        """Create the records with softioc's builder (imported here: it loads EPICS base),
        in access security group ``asg``."""
        from softioc import builder

        p = self.prefix
        defaults = ScanSettings(points=min(100, self.array_length))
        records = self._records
        records["run"] = builder.longOut(
            p + "fly:run", initial_value=0, blocking=True, always_update=True,
            on_update=on_run, DESC="runs a scan while mybusy is Busy")
        # Busy alone goes on to fly:run. A Done (an abort) reaching fly:run while its scan
        # runs would have EPICS process it again once done (RPRO, EPICS 7); that extra
        # processing keeps it active for a moment, and a Busy put in that moment has its
        # put-callback completed at once, before its scan runs.
        records["on_busy"] = builder.records.calcout(
            p + "fly:on_busy", INPA=p + "mybusy", CALC="A", DOPT="Use CALC",
            OOPT="When Non-zero", OUT=builder.PP(records["run"]),
            DESC="passes Busy on to fly:run")
        records["busy"] = builder.boolOut(
            p + "mybusy", ZNAM="Done", ONAM="Busy", initial_value=BUSY_DONE,
            on_update=on_busy, FLNK=records["on_busy"], DESC="fly scan busy")
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
                self.settings(**{name: value})
            except ValueError as error:
                log_event(logger, logging.ERROR, "rejected setting",
                          pv=self.prefix + "fly:" + name, value=value, reason=str(error))
                return False
            return True

        return validate

    # ------------------------------------------------------------- for the scan
    def settings(self, **override: Any) -> ScanSettings:
        """The scan settings from the setting records, with ``override`` applied."""
        records = self._records
        values: dict[str, Any] = {name: records[name].get() for name in SETTING_NAMES}
        values["shape"] = list(SignalShape)[int(records["shape"].get())]
        values.update(override)
        values["points"] = int(values["points"])
        if values["points"] > self.array_length:
            raise ValueError(
                f"points must not exceed the arrays' NELM ({self.array_length}), "
                f"got {values['points']}")
        settings = ScanSettings(**values)
        if override.keys() & {"points", "period", "start", "end"}:
            records["speed"].set(settings.speed)
        return settings

    @property
    def busy(self) -> bool:
        return int(self._records["busy"].get()) == BUSY_BUSY

    def done(self) -> None:
        """Set ``$(P)mybusy`` back to "Done" (which completes the put-callback of "Busy")."""
        self._records["busy"].set(BUSY_DONE)

    def clear_arrays(self) -> None:
        for name in ("t_array", "x_array", "y_array"):
            self._records[name].set(np.zeros(0))

    def publish_point(self, times: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                      count: int) -> None:
        """Show the first ``count`` points; y and x first, so a client that follows
        t_array's NORD finds x and y already there."""
        records = self._records
        records["position"].set(xs[count - 1])
        records["y_array"].set(ys[:count])
        records["x_array"].set(xs[:count])
        records["t_array"].set(times[:count])

    def scans_completed(self, count: int) -> None:
        self._records["scans"].set(count)

    def message(self, text: str) -> None:
        """Show ``text`` in ``$(P)str_wave`` (truncated to fit its NELM)."""
        encoded = text.encode("utf-8", errors="replace")[: MESSAGE_LENGTH - 1]
        self._records["str_wave"].set(encoded.decode("utf-8", errors="ignore"))
