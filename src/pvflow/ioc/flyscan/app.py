"""The fly-scan controller IOC as an app of the IOC framework's runner (application layer).

``pvflow ioc flyscan`` (or ``python -m pvflow.ioc.flyscan``) runs it until SIGTERM/SIGINT.
There is no hardware: ``prepare`` and ``close`` have nothing to do, and the state of the IOC
is the busy record itself, so there is no state machine either.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping

from ..framework.records import (VALUES_ONLY_ASG, LoopThread,
                                 use_values_only_access_security)
from ..framework.runner import EXIT_OK, run_ioc
from ..framework.settings import load_ioc_settings
from ..framework.structured_logging import log_event
from .config import FlyScanSettings
from .controller import FlyScanController

logger = logging.getLogger("pvflow.ioc.flyscan")


class FlyScanApp:
    """What the runner needs: the records of a :class:`FlyScanController`, served until stop."""

    name = "flyscan"

    def __init__(self, settings: FlyScanSettings):
        self.settings = settings
        self.controller = FlyScanController(seed=settings.seed)

    async def prepare(self) -> None:
        """Nothing to prepare: the motor and detector are simulated."""

    def required_array_bytes(self) -> int:
        return 8 * self.settings.nelm

    def build_records(self, loop_thread: LoopThread) -> None:
        # the busy record's FLNK is the scan: a client must not be able to unlink it
        self._access_security = use_values_only_access_security()
        self.controller.build_records(self.settings.prefix, self.settings.nelm,
                                      asg=VALUES_ONLY_ASG)

    def started(self) -> None:
        shutil.rmtree(self._access_security, ignore_errors=True)
        prefix = self.settings.prefix
        log_event(logger, logging.INFO, "fly-scan controller ready", prefix=prefix,
                  nelm=self.settings.nelm, busy=prefix + "mybusy")

    async def run(self, stop: asyncio.Event) -> int:
        await stop.wait()
        return EXIT_OK

    async def close(self) -> None:
        """Nothing to release."""


def make_app(environ: Mapping[str, str]) -> FlyScanApp:
    """Read ``FLYSCAN_*`` from ``environ``, configure logging, build the app."""
    return FlyScanApp(load_ioc_settings(FlyScanSettings, environ))


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the IOC; the exit code of the framework's runner (2 on a bad configuration)."""
    return run_ioc(make_app, environ)
