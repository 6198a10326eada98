"""A third-party style backend for tests, loaded by ``DISS_DEVICE_BACKEND=module:Class``.

It is the ``sim`` backend plus a ``mode`` channel parameter (``DISSSIM_CHANNEL_PARAMS`` must
list it) choosing what the next acquisition does wrong: 0 nothing, 1 one image too few, 2 one
image too many, 3 raise (ERROR), 4 raise ``BackendFailure`` (FAIL). ``FAULTY_INIT=raise``
makes initialisation raise.
"""

from __future__ import annotations

from collections.abc import Mapping

from pvflow.ioc.detector.backends.base import BackendFailure, EventSink
from pvflow.ioc.detector.events import EndDataEvent, ImageDataEvent, StartDataEvent
from pvflow.ioc.detector.backends.sim import SimDetector


class FaultyDetector(SimDetector):
    def __init__(self, emit: EventSink, environ: Mapping[str, str]) -> None:
        super().__init__(emit, environ)
        self._fail_init = environ.get("FAULTY_INIT") == "raise"

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
        count = config.num_images + (1 if mode == 2 else -1)
        self._numid += 1
        start = StartDataEvent(self._numid)
        self.emit(start)
        for index in range(count):
            self.emit(ImageDataEvent(index, start.uuid, 0.0, duration, self._images()))
        self.emit(EndDataEvent(start.uuid))
