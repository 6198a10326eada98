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
from .busy_flight import BusyScans, fly_columns, raise_failed
from .controller import FlyController
from .fly_data import DEFAULT_PAGE_SIZE, describe, event_pages


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
        self.scans = BusyScans(context, self.controller, lambda: self.name)
        self.page_size = page_size
        self.read_timeout = read_timeout
        self._data_keys: dict[str, dict[str, Any]] | None = None

    # --- Flyable ------------------------------------------------------------------------------
    def kickoff(self) -> Status:
        """Start the scan; the status is done once the controller has started acquiring."""
        busy = self.controller.busy_pv
        self.scans.check_idle(self.context.get(busy, timeout=self.read_timeout))
        settings = self._setting_values() if self.complete_timeout is None else {}
        self._data_keys = None
        started = self.scans.kickoff(self.kickoff_timeout, self.complete_timeout, settings)
        return _status_of(started, self)

    def complete(self) -> Status:
        """Done when the controller reports Done; fails after ``complete_timeout``."""
        return _status_of(self.scans.complete(), self)

    def stop(self, *, success: bool = False) -> None:
        """Abort a running scan (the arrays keep the points taken so far)."""
        self.scans.stop()

    # --- Collectable --------------------------------------------------------------------------
    def describe_collect(self) -> dict[str, Any]:
        if self._data_keys is None:
            arrays = self.controller.fly_arrays
            readings = self.context.get_many(arrays.pvs, form="ctrl", timeout=self.read_timeout)
            raise_failed(self.name, readings)
            self._data_keys = describe(self.name, arrays, readings)
        return {self.stream_name: self._data_keys} if self.nested else self._data_keys

    def collect_pages(self) -> Iterator[dict[str, Any]]:
        """All rows of the last scan: one bulk read of every array, then pages."""
        arrays = self.controller.fly_arrays
        values = self.context.get_many(arrays.pvs, timeout=self.read_timeout)
        columns = fly_columns(self.name, arrays, values)
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
        self.scans.check_written(d, {setting: new[self._config_key(setting)]["value"]
                                     for setting in d})
        return old, new

    def read_configuration(self) -> dict[str, Any]:
        pvs = self.controller.setting_pvs
        readings = self.context.get_many(pvs.values(), form="time", timeout=self.read_timeout)
        raise_failed(self.name, readings)
        now = time.time()
        return {self._config_key(setting): {"value": readings[pv].value,
                                            "timestamp": readings[pv].timestamp or now}
                for setting, pv in pvs.items()}

    def describe_configuration(self) -> dict[str, Any]:
        pvs = self.controller.setting_pvs
        readings = self.context.get_many(pvs.values(), form="ctrl", timeout=self.read_timeout)
        raise_failed(self.name, readings)
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
