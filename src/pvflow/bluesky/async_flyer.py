"""`AsyncBusyFlyer`: the busy-record flyer for ophyd-async, on pvflow's async calls.

The same protocol and the same pages as :class:`~pvflow.bluesky.busy_flyer.BusyFlyer` (both
share a :class:`~pvflow.bluesky.busy_flight.BusyScans` and page with
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
from .busy_flight import BusyScans, fly_columns, raise_failed
from .controller import FlyController
from .fly_data import DEFAULT_PAGE_SIZE, describe, event_pages


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
        self.scans = BusyScans(context, self.controller, lambda: self.name)
        self.page_size = page_size
        self.read_timeout = read_timeout
        self._data_keys: dict[str, dict[str, Any]] | None = None
        super().__init__(name=name)

    @AsyncStatus.wrap
    async def kickoff(self) -> None:
        busy = self.controller.busy_pv
        self.scans.check_idle(await self.context.get_async(busy, timeout=self.read_timeout))
        settings = await self._setting_values() if self.complete_timeout is None else {}
        self._data_keys = None
        started = self.scans.kickoff(self.kickoff_timeout, self.complete_timeout, settings)
        await asyncio.wrap_future(started)

    @AsyncStatus.wrap
    async def complete(self) -> None:
        await asyncio.wrap_future(self.scans.complete())

    async def stop(self, success: bool = False) -> None:
        self.scans.stop()

    async def describe_collect(self) -> dict[str, Any]:
        if self._data_keys is None:
            arrays = self.controller.fly_arrays
            readings = await self.context.get_many_async(arrays.pvs, form="ctrl",
                                                         timeout=self.read_timeout)
            raise_failed(self.name, readings)
            self._data_keys = describe(self.name, arrays, readings)
        return self._data_keys

    async def collect_pages(self) -> AsyncIterator[dict[str, Any]]:
        arrays = self.controller.fly_arrays
        values = await self.context.get_many_async(arrays.pvs, timeout=self.read_timeout)
        columns = fly_columns(self.name, arrays, values)
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
        self.scans.check_written(value, await self._setting_values())

    async def _setting_values(self) -> dict[str, Any]:
        pvs = self.controller.setting_pvs
        values = await self.context.get_many_async(pvs.values(), timeout=self.read_timeout)
        raise_failed(self.name, values)
        return {name: values[pv] for name, pv in pvs.items()}
