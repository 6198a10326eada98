"""``pvflow ioc sync``: the sync IOC as an app of the IOC framework's runner (application
layer). The records are in :mod:`.records`, the state machine in :mod:`.controller`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from ..framework.plugins import load_plugin
from ..framework.records import LoopThread
from ..framework.runner import EXIT_FAIL, EXIT_OK, run_ioc
from ..framework.settings import ConfigError, load_ioc_settings
from ..framework.structured_logging import log_event
from .backends.base import BACKEND_GROUP, BUILTIN_BACKENDS, REQUIRED_METHODS
from .config import SyncSettings
from .controller import SyncController
from .records import SyncRecords

logger = logging.getLogger("pvflow.ioc.sync")


class SyncApp:
    """Polls the device every ``SYNCSTER_POLL_PERIOD`` and steps the controller."""

    name = "sync"

    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings
        try:
            backend_class = load_plugin(settings.backend_spec, builtins=BUILTIN_BACKENDS,
                                        group=BACKEND_GROUP,
                                        required=REQUIRED_METHODS)
            self.device: Any = backend_class(settings)
        except ValueError as error:
            raise ConfigError(f"SYNCSTER_BACKEND/SYNCSTER_RRE_PORT: {error}") from None
        self.controller = SyncController(self.device, auto_stray=settings.auto_stray,
                                         sync_timeout=settings.timeout, clock=time.monotonic)
        self.records: SyncRecords | None = None

    async def prepare(self) -> None:
        """Open the device; a failure shows as ERROR once the PVs are up, not as a crash."""
        await self.device.open()

    def required_array_bytes(self) -> int:
        return 1024

    def build_records(self, loop_thread: LoopThread) -> None:
        self.records = SyncRecords(self.settings.prefix, self.controller, self.device,
                                   loop_thread)

    def started(self) -> None:
        log_event(logger, logging.INFO, "sync IOC ready", prefix=self.settings.prefix,
                  backend=self.settings.backend_spec, port=self.settings.rre_port or "",
                  auto_stray=self.settings.auto_stray, sync_timeout=self.settings.sync_timeout)

    async def run(self, stop: asyncio.Event) -> int:
        assert self.records is not None
        period = self.settings.poll_period
        while not stop.is_set():
            await self.device.update()
            self.controller.step()
            self.records.publish()
            if self.controller.machine.failed:
                return EXIT_FAIL
            try:
                await asyncio.wait_for(stop.wait(), period)
            except TimeoutError:
                pass
        return EXIT_OK

    async def close(self) -> None:
        await self.device.close()


def make_app(environ: Mapping[str, str]) -> SyncApp:
    """Read ``SYNCSTER_*`` from ``environ``, configure logging, build the app."""
    return SyncApp(load_ioc_settings(SyncSettings, environ))


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the IOC; the exit code of the framework's runner (2 on a bad configuration)."""
    return run_ioc(make_app, environ)
