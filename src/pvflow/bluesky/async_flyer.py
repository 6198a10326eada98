"""`AsyncBusyFlyer`: the busy-record flyer for ophyd-async, on pvflow's async calls.

The same protocol and the same pages as :class:`~pvflow.bluesky.busy_flyer.BusyFlyer` (both
drive a :class:`~pvflow.bluesky.busy_flight.BusyFlight` and page with
:mod:`~pvflow.bluesky.fly_data`), but every wait is awaited on the RunEngine's loop and the
data keys are flat, as ophyd-async flyers' are: declare the stream first (``fly_scan`` does).

    flyer = AsyncBusyFlyer(context, FlyController(prefix="prj:"), name="fly")
    RE(fly_scan(flyer, points=100))
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ophyd_async.core import AsyncStatus, Device

from ..context import Context
from .busy_flight import DONE, BusyFlight
from .controller import FlyController, same_value
from .errors import FlyScanError
from .fly_data import DEFAULT_PAGE_SIZE, describe, event_pages, trim


class AsyncBusyFlyer(Device):
    """Flyable + EventPageCollectable with ``async`` methods; ``nested`` is False."""

    nested = False

    def __init__(self, context: Context, controller: FlyController | None = None, *,
                 name: str = "", stream_name: str = "primary", kickoff_timeout: float = 10.0,
                 complete_timeout: float | None = None, page_size: int = DEFAULT_PAGE_SIZE,
                 read_timeout: float = 30.0):
        self.context = context
        self.controller = controller or FlyController()
        self.stream_name = stream_name
        self.kickoff_timeout = kickoff_timeout
        self.complete_timeout = complete_timeout
        self.page_size = page_size
        self.read_timeout = read_timeout
        self._flight: BusyFlight | None = None
        self._complete_deadline: float | None = None
        self._data_keys: dict[str, dict[str, Any]] | None = None
        super().__init__(name=name)

    @AsyncStatus.wrap
    async def kickoff(self) -> None:
        busy = self.controller.busy_pv
        if self._flight is not None and self._flight.flying:
            raise FlyScanError(f"{self.name}: kickoff refused: the fly scan on {busy} is still "
                               "running; wait for complete() or stop() it", pv=busy)
        if int(await self.context.get_async(busy, timeout=self.read_timeout)) != DONE:
            raise FlyScanError(f"{self.name}: kickoff refused: {busy} is already Busy "
                               "(another scan runs on this controller)", pv=busy)
        deadline = self.complete_timeout
        if deadline is None:
            deadline = self.controller.complete_timeout(await self._setting_values())
        self._data_keys = None
        self._complete_deadline = deadline
        flight = self._flight = BusyFlight(self.context, busy, self.name)
        flight.begin()
        flight.expect(flight.started, self.kickoff_timeout, lambda: (
            f"{self.name}: {busy} did not turn Busy within {self.kickoff_timeout:g} s of the "
            "put; the scan was aborted"))
        await asyncio.wrap_future(flight.started)

    @AsyncStatus.wrap
    async def complete(self) -> None:
        flight = self._flight
        if flight is None:
            raise FlyScanError(f"{self.name}: complete() without kickoff()")
        busy, seconds = self.controller.busy_pv, self._complete_deadline
        flight.expect(flight.finished, seconds, lambda: (
            f"{self.name}: {busy} was still Busy {seconds:g} s after complete(); the scan "
            f"was aborted (Done put to {busy})"))
        await asyncio.wrap_future(flight.finished)

    async def stop(self, success: bool = False) -> None:
        if self._flight is not None and self._flight.flying:
            self._flight.abort()

    async def describe_collect(self) -> dict[str, Any]:
        if self._data_keys is None:
            arrays = self.controller.fly_arrays
            readings = await self.context.get_many_async(arrays.pvs, form="ctrl",
                                                         timeout=self.read_timeout)
            self._raise_failed(readings)
            self._data_keys = describe(self.name, arrays, readings)
        return self._data_keys

    async def collect_pages(self) -> AsyncIterator[dict[str, Any]]:
        arrays = self.controller.fly_arrays
        values = await self.context.get_many_async(arrays.pvs, timeout=self.read_timeout)
        self._raise_failed(values)
        try:
            columns = trim(arrays, values)
        except ValueError as error:
            raise FlyScanError(f"{self.name}: {error}") from None
        for page in event_pages(self.name, arrays, columns, self.page_size):
            yield page

    @AsyncStatus.wrap
    async def prepare(self, value: Mapping[str, Any]) -> None:
        """Write settings, e.g. ``{"points": 100, "period": 0.01}``; done when every put is,
        or fails naming a setting the controller refused."""
        self.controller.check_settings(value)
        pvs = self.controller.setting_pvs
        await asyncio.gather(*(self.context.put_async(pvs[name], setting,
                                                      timeout=self.read_timeout)
                               for name, setting in value.items()))
        read_back = await self._setting_values()
        refused = [f"{pvs[name]}={setting!r}" for name, setting in value.items()
                   if not same_value(read_back[name], setting)]
        if refused:
            raise ValueError(f"{self.name}: the controller refused {', '.join(refused)} "
                             "(see its log for the reason)")

    async def _setting_values(self) -> dict[str, Any]:
        pvs = self.controller.setting_pvs
        values = await self.context.get_many_async(pvs.values(), timeout=self.read_timeout)
        self._raise_failed(values)
        return {name: values[pv] for name, pv in pvs.items()}

    def _raise_failed(self, results: Mapping[str, Any]) -> None:
        for pv, result in results.items():
            if isinstance(result, BaseException):
                raise FlyScanError(f"{self.name}: cannot read {pv}: {result}", pv=pv) from result
