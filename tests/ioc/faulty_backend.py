"""A third-party style backend for tests, loaded by ``DISS_DEVICE_BACKEND=module:Class``.

It is the ``sim`` backend plus a ``mode`` channel parameter (``DISSSIM_CHANNEL_PARAMS`` must
list it) choosing what the next acquisition does wrong: 0 nothing, 1 one image too few, 2 one
image too many, 3 raise (ERROR), 4 raise ``BackendFailure`` (FAIL), 5 raise and report a
device error until a clear, which then takes :data:`CLEAR_TIME` (as an Eiger re-initializing
after a reboot) and ends by counting up the channel parameter ``clears`` (if listed).
``FAULTY_INIT=raise`` makes initialisation raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from pvflow.ioc.detector.backends.base import BackendFailure, EventSink
from pvflow.ioc.detector.events import (ChannelStateEvent, DeviceRuntime, EndDataEvent,
                                        ImageDataEvent, StartDataEvent)
from pvflow.ioc.detector.backends.sim import SimDetector

CLEAR_TIME = 1.0  # seconds; many loop periods of the controller


class FaultyDetector(SimDetector):
    def __init__(self, emit: EventSink, environ: Mapping[str, str]) -> None:
        super().__init__(emit, environ)
        self._fail_init = environ.get("FAULTY_INIT") == "raise"
        self._device_error = ""

    async def initialize(self) -> None:
        if self._fail_init:
            raise RuntimeError("simulated initialisation crash")
        await super().initialize()

    async def acquire(self, duration: float) -> None:
        config = self._config
        assert config is not None
        mode = int(next(iter(self._meta.values())).get("mode", 0))
        if mode == 0:
            await super().acquire(duration)
            return
        if mode == 3:
            raise RuntimeError("simulated acquisition crash")
        if mode == 4:
            raise BackendFailure("simulated detector loss")
        if mode == 5:
            self._device_error = "simulated device error"
            raise RuntimeError(self._device_error)
        count = config.num_images + (1 if mode == 2 else -1)
        self._numid += 1
        start = StartDataEvent(self._numid)
        self.emit(start)
        for index in range(count):
            self.emit(ImageDataEvent(index, start.uuid, 0.0, duration, self._images()))
        self.emit(EndDataEvent(start.uuid))

    def runtime(self) -> DeviceRuntime:
        if self._device_error:
            return DeviceRuntime(state="error", errors=(self._device_error,))
        return super().runtime()

    async def clear(self) -> None:
        if not self._device_error:
            return
        await asyncio.sleep(CLEAR_TIME)
        self._device_error = ""
        for channel, meta in self._meta.items():
            if "clears" in meta:
                meta["clears"] += 1
                self.emit(ChannelStateEvent(channel, dict(meta)))
