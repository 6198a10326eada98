"""``pvflow ioc detector``: the Diss-compatible detector IOC (application layer).

Start-up follows Diss: the controller first brings the device to READY, because the channel
PVs and the image size come from the device configuration; only then are the records built
and served (CA and PVA). Nothing is served during INIT and WARMUP; a failure there ends the
process with exit code 1 and a log line saying why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from ..framework.plugins import PluginError, load_plugin
from ..framework.records import LoopThread
from ..framework.runner import EXIT_FAIL, EXIT_OK, run_ioc
from ..framework.settings import ConfigError, load_ioc_settings
from ..framework.structured_logging import log_event
from .backends.base import BACKEND_GROUP, BUILTIN_BACKENDS, REQUIRED_METHODS
from .config import DetectorSettings
from .controller import DetectorController
from .records import DetectorRecords, image_array_bytes

log = logging.getLogger("pvflow.ioc.detector")


class DetectorApp:
    """The detector IOC as the runner sees it."""

    name = "detector"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.settings = load_ioc_settings(DetectorSettings, environ)
        try:
            backend_class = load_plugin(self.settings.device_backend, builtins=BUILTIN_BACKENDS,
                                        group=BACKEND_GROUP, required=REQUIRED_METHODS)
        except PluginError as exc:
            raise ConfigError(f"DISS_DEVICE_BACKEND={self.settings.device_backend!r}: "
                              f"{exc}") from exc
        check_environment = getattr(backend_class, "check_environment", None)
        if callable(check_environment):
            check_environment(environ)
        log_event(log, logging.INFO, "Detector IOC", prefix=self.settings.prefix,
                  backend=f"{backend_class.__module__}:{backend_class.__qualname__}",
                  auto_acquire=self.settings.auto_acquire or "off",
                  loop_period=self.settings.loop_period)
        self.controller = DetectorController(backend_class, environ, self.settings)
        self.records: DetectorRecords | None = None

    async def prepare(self) -> None:
        log_event(log, logging.INFO, "Waiting for initialization", state="INIT")
        await self.controller.start_up()

    def required_array_bytes(self) -> int:
        assert self.controller.config is not None
        return image_array_bytes(self.controller.config)

    def build_records(self, loop_thread: LoopThread) -> None:
        assert self.controller.config is not None
        self.records = DetectorRecords(self.settings.prefix, self.controller,
                                       self.controller.config, loop_thread,
                                       self.settings.file_directory)

    def started(self) -> None:
        assert self.records is not None
        self.records.started()
        log_event(log, logging.INFO, "Serving", prefix=self.settings.prefix,
                  channels=",".join(self.records.images))

    async def run(self, stop: asyncio.Event) -> int:
        await self.controller.run(stop)
        if self.controller.machine.failed:
            log_event(log, logging.CRITICAL, "IOC exits in FAIL", code=EXIT_FAIL,
                      reason=self.controller.machine.failure)
            return EXIT_FAIL
        return EXIT_OK

    async def close(self) -> None:
        if self.records is not None:
            await asyncio.to_thread(self.records.file.close)
        await self.controller.close()


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the detector IOC configured by ``DISS_*`` variables; returns the exit code."""
    return run_ioc(DetectorApp, environ)
