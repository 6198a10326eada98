"""`BusyFlyer`: an ophyd (v1) flyer for busy-record fly scans, reading through pvflow.

kickoff puts Busy and is done once the record shows Busy; complete is done when the
put-callback reports the record Done again (or fails with a timeout that aborts the scan);
collect_pages reads every array in one ``get_many`` round trip and pages the rows with their
trigger times as timestamps. All PV I/O goes through a :class:`pvflow.Context`; ophyd
provides the Device (name, parent, statuses) and nothing else, so the flyer works whatever
ophyd control layer is installed.

    flyer = BusyFlyer(context, name="fly", controller=FlyController(prefix="prj:"))
    RE(bluesky.plans.fly([flyer]))                      # nested describe: stream "primary"
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from typing import Any

from ophyd import Device
from ophyd.status import Status

from ..context import Context
from .busy_flight import DONE, BusyFlight
from .controller import FlyController, same_value
from .errors import FlyScanError
from .fly_data import DEFAULT_PAGE_SIZE, describe, event_pages, trim


def _status_of(future: Future[None], obj: Any) -> Status:
    """An ophyd Status that follows ``future`` (done, or failed with its exception)."""
    status = Status(obj=obj)

    def settle(done: Future[None]) -> None:
        error = done.exception()
        if error is None:
            status.set_finished()
        else:
            status.set_exception(error)

    future.add_done_callback(settle)
    return status


class BusyFlyer(Device):
    """Flyable + EventPageCollectable + Configurable for one busy-record controller.

    ``stream_name`` is the stream the rows go to. With ``nested=True`` (default)
    ``describe_collect`` returns ``{stream_name: data_keys}``, the form ``bluesky.plans.fly``
    and a plain ``bps.collect(flyer)`` need; with ``nested=False`` it returns the data keys
    alone, the form ``declare_stream(flyer, name=stream_name, collect=True)`` followed by
    ``bps.collect(flyer, name=stream_name)`` needs (the RunEngine takes only that form there).
    ``complete_timeout`` (seconds) defaults to twice points x period plus a margin, read from
    the controller when the scan starts.
    """

    def __init__(self, context: Context, *, name: str,
                 controller: FlyController | None = None, stream_name: str = "primary",
                 nested: bool = True,
                 kickoff_timeout: float = 10.0, complete_timeout: float | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE, read_timeout: float = 30.0,
                 parent: Any = None, **kwargs: Any):
        super().__init__("", name=name, parent=parent, **kwargs)
        self.context = context
        self.controller = controller or FlyController()
        self.stream_name = stream_name
        self.nested = nested
        self.kickoff_timeout = kickoff_timeout
        self.complete_timeout = complete_timeout
        self.page_size = page_size
        self.read_timeout = read_timeout
        self._flight: BusyFlight | None = None
        self._complete_deadline: float | None = None
        self._data_keys: dict[str, dict[str, Any]] | None = None

    # --- Flyable ------------------------------------------------------------------------------
    def kickoff(self) -> Status:
        """Start the scan; the status is done once the controller has started acquiring."""
        busy = self.controller.busy_pv
        if self._flight is not None and self._flight.flying:
            raise FlyScanError(f"{self.name}: kickoff refused: the fly scan on {busy} is still "
                               "running; wait for complete() or stop() it", pv=busy)
        state = self.context.get(busy, timeout=self.read_timeout)
        if int(state) != DONE:
            raise FlyScanError(f"{self.name}: kickoff refused: {busy} is already Busy "
                               "(another scan runs on this controller)", pv=busy)
        deadline = self.complete_timeout
        if deadline is None:
            deadline = self.controller.complete_timeout(self._setting_values())
        self._data_keys = None
        flight = self._flight = BusyFlight(self.context, busy, self.name)
        flight.begin()
        flight.expect(flight.started, self.kickoff_timeout, lambda: (
            f"{self.name}: {busy} did not turn Busy within {self.kickoff_timeout:g} s of the "
            "put; the scan was aborted"))
        self._complete_deadline = deadline
        return _status_of(flight.started, self)

    def complete(self) -> Status:
        """Done when the controller reports Done; fails after ``complete_timeout``."""
        flight = self._flight
        if flight is None:
            raise FlyScanError(f"{self.name}: complete() without kickoff()")
        busy, seconds = self.controller.busy_pv, self._complete_deadline
        flight.expect(flight.finished, seconds, lambda: (
            f"{self.name}: {busy} was still Busy {seconds:g} s after complete(); the scan "
            f"was aborted (Done put to {busy})"))
        return _status_of(flight.finished, self)

    def stop(self, *, success: bool = False) -> None:
        """Abort a running scan (the arrays keep the points taken so far)."""
        if self._flight is not None and self._flight.flying:
            self._flight.abort()

    # --- Collectable --------------------------------------------------------------------------
    def describe_collect(self) -> dict[str, Any]:
        if self._data_keys is None:
            arrays = self.controller.fly_arrays
            readings = self.context.get_many(arrays.pvs, form="ctrl", timeout=self.read_timeout)
            self._raise_failed(readings)
            self._data_keys = describe(self.name, arrays, readings)
        return {self.stream_name: self._data_keys} if self.nested else self._data_keys

    def collect_pages(self) -> Iterator[dict[str, Any]]:
        """All rows of the last scan: one bulk read of every array, then pages."""
        arrays = self.controller.fly_arrays
        values = self.context.get_many(arrays.pvs, timeout=self.read_timeout)
        self._raise_failed(values)
        try:
            columns = trim(arrays, values)
        except ValueError as error:
            raise FlyScanError(f"{self.name}: {error}") from None
        yield from event_pages(self.name, arrays, columns, self.page_size)

    # --- Preparable, Configurable ---------------------------------------------------------------
    def prepare(self, value: Mapping[str, Any]) -> Status:
        """Write settings (as :meth:`configure`) off the RunEngine's thread; the status is
        done when every put is, or fails naming a refused setting."""
        status = Status(obj=self)

        def write() -> None:
            try:
                self.configure(value)
            except Exception as error:
                status.set_exception(error)
            else:
                status.set_finished()

        threading.Thread(target=write, name=f"{self.name}-prepare", daemon=True).start()
        return status

    def configure(self, d: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write settings (``{"points": 100, "start": 0.0, ...}``); ``(old, new)`` readings."""
        self.controller.check_settings(d)
        old = self.read_configuration()
        pvs = self.controller.setting_pvs
        for setting, value in d.items():
            self.context.put(pvs[setting], value, timeout=self.read_timeout)
        new = self.read_configuration()
        refused = [f"{pvs[setting]}={value!r}" for setting, value in d.items()
                   if not same_value(new[self._config_key(setting)]["value"], value)]
        if refused:
            raise ValueError(f"{self.name}: the controller refused {', '.join(refused)} "
                             "(see its log for the reason)")
        return old, new

    def read_configuration(self) -> dict[str, Any]:
        pvs = self.controller.setting_pvs
        readings = self.context.get_many(pvs.values(), form="time", timeout=self.read_timeout)
        self._raise_failed(readings)
        now = time.time()
        return {self._config_key(setting): {"value": readings[pv].value,
                                            "timestamp": readings[pv].timestamp or now}
                for setting, pv in pvs.items()}

    def describe_configuration(self) -> dict[str, Any]:
        pvs = self.controller.setting_pvs
        readings = self.context.get_many(pvs.values(), form="ctrl", timeout=self.read_timeout)
        self._raise_failed(readings)
        return {self._config_key(setting): {
            "source": f"PV:{pv}", "dtype": "integer" if isinstance(readings[pv].value, int)
            else "number", "shape": [], "units": readings[pv].units}
            for setting, pv in pvs.items()}

    # --- helpers --------------------------------------------------------------------------------
    def _config_key(self, setting: str) -> str:
        return f"{self.name}_{setting}"

    def _setting_values(self) -> dict[str, Any]:
        return {key.removeprefix(self.name + "_"): reading["value"]
                for key, reading in self.read_configuration().items()}

    def _raise_failed(self, results: Mapping[str, Any]) -> None:
        for pv, result in results.items():
            if isinstance(result, BaseException):
                raise FlyScanError(f"{self.name}: cannot read {pv}: {result}", pv=pv) from result
